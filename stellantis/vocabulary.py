"""The Stellantis vocabulary, in one place: every model, form, serializer and the simulator import it.

Values are the vendor's own strings (see api-b2b.yaml and the webhook template).
"""

from django.db import models


class RemoteType(models.TextChoices):
    THERMAL_PRECONDITIONING = "ThermalPreconditioning", "Preconditioning"
    CHARGING = "ElectricBatteryChargingRequest", "Charging"
    HORN = "Horn", "Horn"
    DOORS = "Doors", "Doors"
    LIGHTS = "Lights", "Lights"
    IMMOBILIZATION = "Immobilization", "Immobilization"
    STOLEN = "Stolen", "Stolen"
    WAKE_UP = "WakeUp", "State refresh"
    NAVIGATION = "Navigation", "Navigation"


# The member of the `Remote` body that carries each remote type ("exactly one per request").
MEMBER_TO_TYPE = {
    "preconditioning": RemoteType.THERMAL_PRECONDITIONING,
    "immobilization": RemoteType.IMMOBILIZATION,
    "door": RemoteType.DOORS,
    "horn": RemoteType.HORN,
    "charging": RemoteType.CHARGING,
    "stolen": RemoteType.STOLEN,
    "lights": RemoteType.LIGHTS,
    "wakeUp": RemoteType.WAKE_UP,
    "navigation": RemoteType.NAVIGATION,
}


class EventType(models.TextChoices):
    PENDING = "Pending", "Pending"
    DONE = "Done", "Done"


class PendingStatus(models.TextChoices):
    ACCEPTED = "Accepted", "Accepted by Stellantis"
    WAKING_UP_VEHICLE = "WakingUpVehicle", "Waking up the vehicle"
    CHECKING_VEHICLE = "CheckingVehicle", "Checking the vehicle"
    SENT_TO_VEHICLE = "SentToVehicle", "Sent to the vehicle"
    VEHICLE_BATTERY_CHARGE_TOO_LOW = "VehicleBatteryChargeTooLow", "Vehicle battery charge too low"
    TOO_MANY_WAKE_UPS_OVER_MONTH = "TooManyWakeUpsOverMonth", "Too many wake-ups this month"


class DoneStatus(models.TextChoices):
    SUCCESS = "Success", "Success"
    ALREADY_DONE = "AlreadyDone", "Already done"
    FAILED = "Failed", "Failed"


class FailureCause(models.TextChoices):
    GENERAL_ERROR = "GeneralError", "General error"
    VEHICLE_ERROR = "VehicleError", "Vehicle error"
    WRONG_COMMAND = "WrongCommand", "Wrong command"
    VEHICLE_CONNECTION_TIMEOUT = "VehicleConnectionTimeout", "Vehicle connection time-out"
    MISSING_RIGHTS = "MissingRights", "Missing rights"
    NOT_POSSIBLE_BATTERY_LEVEL = "NotPossibleDueToVehicleBatteryLevel", "Vehicle battery level too low"
    NOT_POSSIBLE_PRIVACY_LEVEL = "NotPossibleDueToVehiclePrivacyLevel", "Vehicle privacy setting"
    TOO_MANY_WAKE_UPS_OVER_MONTH = "TooManyWakeUpsOverMonth", "Too many wake-ups this month"
    TOO_MANY_REQUEST_IN_SHORT_TIME = "TooManyRequestInShortTime", "Too many requests in a short time"
    SAME_ACTION_IN_PROGRESS = "SameActionInProgress", "Same action already in progress"
    NOT_POSSIBLE_STOLEN_STATE = "NotPossibleDueToVehicleStolenState", "Vehicle reported stolen"
    VEHICLE_IN_USE = "VehicleInUse", "Vehicle in use"
    TOO_MANY_REQUEST_SENT = "TooManyRequestSent", "Too many requests sent"
    DOORS_OPEN = "DoorsOpen", "Doors open"
    VEHICLE_ERROR_OR_CID_INSIDE = "VehicleErrorOrCidInside", "Vehicle error or key inside"
    CID_INSIDE = "CidInside", "Key inside the vehicle"
    EXTERNAL_CHARGING_SYSTEM_ERROR = "ExternalChargingSystemError", "Charging point error"
    VEHICLE_CHARGING_SYSTEM_ERROR = "VehicleChargingSystemError", "Vehicle charging system error"
    VEHICLE_IS_NOT_LOCKED = "VehicleIsNotLocked", "Vehicle is not locked"
    CANCELED_BY_DRIVER = "CanceledByDriver", "Cancelled by the driver"


# What a person should do next, per failure cause; shown beside the cause in plain words.
FAILURE_ADVICE = {
    FailureCause.VEHICLE_CONNECTION_TIMEOUT: "The vehicle did not answer: it may be out of network coverage. Try again later.",
    FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH: "The monthly wake-up budget is spent. Retry while the vehicle is in use, or next month.",
    FailureCause.SAME_ACTION_IN_PROGRESS: "The same command is already running on this vehicle. Wait for it to finish.",
    FailureCause.MISSING_RIGHTS: "This vehicle has no subscription to this remote service. Check its contract.",
    FailureCause.NOT_POSSIBLE_BATTERY_LEVEL: "The vehicle battery is too low. Charge it, then retry.",
    FailureCause.NOT_POSSIBLE_STOLEN_STATE: "The vehicle is reported stolen; only stolen-vehicle commands are allowed.",
    FailureCause.VEHICLE_IN_USE: "The vehicle is being driven. Retry once it is parked.",
    FailureCause.DOORS_OPEN: "A door is open. Close it, then lock again.",
    FailureCause.CID_INSIDE: "A key is inside the vehicle. Remove it, then retry.",
    FailureCause.VEHICLE_ERROR_OR_CID_INSIDE: "Check that no key is inside and retry; contact support if it persists.",
    FailureCause.TOO_MANY_REQUEST_IN_SHORT_TIME: "Too many commands in a short time. Wait a few minutes.",
    FailureCause.TOO_MANY_REQUEST_SENT: "Too many commands sent. Wait before retrying.",
    FailureCause.CANCELED_BY_DRIVER: "The driver cancelled the command in the vehicle.",
    FailureCause.EXTERNAL_CHARGING_SYSTEM_ERROR: "The charging point did not deliver: check that the vehicle is plugged in and the point works.",
    FailureCause.VEHICLE_CHARGING_SYSTEM_ERROR: "The vehicle's charging system reported a fault. Have it checked if it persists.",
    FailureCause.WRONG_COMMAND: "This vehicle does not accept this command (e.g. charging on a thermic vehicle).",
    FailureCause.VEHICLE_ERROR: "The vehicle reported an error. Retry later; contact support if it persists.",
    FailureCause.GENERAL_ERROR: "Stellantis reported a general error. Retry later.",
    FailureCause.NOT_POSSIBLE_PRIVACY_LEVEL: "The driver's privacy setting blocks remote commands.",
    FailureCause.VEHICLE_IS_NOT_LOCKED: "The vehicle must be locked first.",
}


class FeedbackDetail(models.TextChoices):
    NO_CID_BLACKLISTED = "NoCIDBlacklisted", "Locked, key not blacklisted"
    CID_BLACKLISTED = "CIDBlacklisted", "Locked, key blacklisted"


class CallbackStatus(models.TextChoices):
    RUNNING = "Running", "Running"
    PAUSED = "Paused", "Paused"
    FAILED = "Failed", "Failed"


class RetryPolicy(models.TextChoices):
    NONE = "None", "None (one single retry)"
    BOUNDED = "Bounded", "Bounded"


class AttributeType(models.TextChoices):
    HEADER = "Header", "Header"
    QUERY = "Query", "Query"
    BODY = "Body", "Body"


# Variables Stellantis fills in per notification when an attribute value starts with "$".
ATTRIBUTE_VARIABLES = ("$vin", "$callbackID", "$remoteType", "$fleetID")


class Motorization(models.TextChoices):
    ELECTRIC = "Electric", "Electric"
    HYBRID = "Hybrid", "Plug-in hybrid"
    THERMIC = "Thermic", "Thermic"
    HYDROGEN = "Hydrogen", "Hydrogen"


ELECTRIFIED = (Motorization.ELECTRIC, Motorization.HYBRID, Motorization.HYDROGEN)

# Vendor horizon: notifications are not retried past this, after that only GET tells.
NOTIFICATION_HORIZON_SECONDS = 3 * 24 * 3600


def label_of(vocabulary: type[models.TextChoices], value: str) -> str:
    """A value's words in `vocabulary`, or the value itself when the vendor sent one we do not know."""
    return vocabulary(value).label if value in vocabulary.values else value
