"""Tables of the embedded Stellantis simulator: its own world, never the portal's rows.

The simulator speaks to the portal only over HTTP, so nothing here points at `vehicles`,
`callbacks` or `remotes`. Ids are uuid4 hex strings, which fit the vendor's path pattern
`([0-9a-fA-F]|-|_)*`.
"""

import datetime as dt
import uuid

from django.db import models
from django.utils import timezone

from stellantis import behaviour
from stellantis.vocabulary import (
    CallbackStatus,
    DoneStatus,
    EventType,
    FailureCause,
    FeedbackDetail,
    Motorization,
    PendingStatus,
    RemoteType,
)

# The vendor's RemoteActionStatus: every Pending and Done status.
ACTION_STATUSES = [*PendingStatus.choices, *DoneStatus.choices]

# Asleep and not driven for this long, a vehicle is in deep sleep: it no longer wakes up.
DEEP_SLEEP_AFTER = behaviour.DEEP_SLEEP_AFTER
DEFAULT_WAKE_UP_BUDGET = behaviour.WAKE_UP_BUDGET_PER_MONTH


def new_id() -> str:
    return uuid.uuid4().hex


class SimFleet(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    seed = models.IntegerField(null=True, blank=True, help_text="The seed `seed_world` built this fleet from, if any.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "simulated fleet"

    def __str__(self):
        return self.name


class SimVehicle(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    fleet = models.ForeignKey(SimFleet, on_delete=models.CASCADE, related_name="vehicles")
    vin = models.CharField(max_length=17, unique=True)
    brand = models.CharField(max_length=40)
    motorization = models.CharField(max_length=16, choices=Motorization.choices)
    asleep = models.BooleanField(
        default=False,
        help_text="The vehicle dozes off when idle: while `awake_until` is past, a remote first has to wake it (slower).",
    )
    awake_until = models.DateTimeField(
        null=True, blank=True, help_text="A vehicle that received a message stays awake until then, even when `asleep`."
    )
    online = models.BooleanField(
        default=True, help_text="Off means out of coverage: every remote ends in a connection time-out."
    )
    doors_locked = models.BooleanField(
        default=True, help_text="Off (unlocked): immobilizing fails with VehicleIsNotLocked at the vendor's check."
    )
    energy_level = models.FloatField(default=80.0, help_text="Battery (electrified) or fuel (thermic) level, percent.")
    autonomy_km = models.PositiveIntegerField(default=300, help_text="Range left for that energy, km.")
    plugged = models.BooleanField(default=False, help_text="Charging cable connected (electrified vehicles).")
    charging = models.BooleanField(
        default=False,
        help_text="A charge is in progress. On while not plugged, the charger is faulty: "
        "a charging command fails with VehicleChargingSystemError.",
    )
    longitude = models.FloatField(default=2.3522)
    latitude = models.FloatField(default=48.8566)
    last_driven_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="End of the last trip; shown as the position's date. Asleep and not driven for "
        "14 days, the vehicle is in deep sleep and no longer wakes up.",
    )
    # --- demo traits: what makes a remote fail, and where its outcome shows in /status ----------
    remote_subscribed = models.BooleanField(
        default=True, help_text="Off: no remote-control subscription; every remote fails with MissingRights."
    )
    wake_up_budget = models.PositiveIntegerField(
        default=DEFAULT_WAKE_UP_BUDGET, help_text="Wake-ups allowed per calendar month (UTC) to spare the 12 V battery."
    )
    wake_ups_used = models.PositiveIntegerField(default=0, help_text="Wake-ups spent in `wake_up_month`.")
    wake_up_month = models.CharField(
        max_length=7, blank=True, help_text='"YYYY-MM" the count belongs to; another month starts from zero.'
    )
    door_open = models.BooleanField(default=False, help_text="A door is open: a lock fails with DoorsOpen.")
    in_use = models.BooleanField(
        default=False,
        help_text="Being driven (ignition on, moving): awake, charging or immobilizing fails with VehicleInUse, "
        "and a lock fails with CidInside (the key is inside) unless forced, which blacklists the key.",
    )
    stolen = models.BooleanField(
        default=False, help_text="Reported stolen: only stolen and immobilization commands are taken."
    )
    stolen_since = models.DateTimeField(null=True, blank=True, help_text="When the stolen state started.")
    immobilized = models.BooleanField(default=False)
    preconditioning_on = models.BooleanField(default=False, help_text="Air conditioning running (electrified).")
    preconditioning_programs = models.JSONField(
        default=list, blank=True, help_text="Preconditioning programs by slot, as the Remote body set them."
    )
    lights_on = models.BooleanField(default=False)
    charge_programs = models.JSONField(default=list, blank=True, help_text="Charge schedule programs.")
    charge_preferences = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"level": "Level3", "type": "Full"}'
    )
    next_delayed_charge = models.DateTimeField(null=True, blank=True, help_text="A delayed charge starts then.")
    tracking_running = models.PositiveIntegerField(
        null=True, blank=True, help_text="Stolen-vehicle tracking period while running, seconds."
    )
    tracking_shutdown = models.PositiveIntegerField(
        null=True, blank=True, help_text="Stolen-vehicle tracking period while shut down, seconds."
    )
    navigation_positions = models.JSONField(
        default=list, blank=True, help_text="The last itinerary sent to the navigation system."
    )
    next_failure = models.CharField(
        max_length=64, blank=True, choices=FailureCause.choices,
        help_text="Demo and tests: the next command to this vehicle ends Failed with this cause, after the "
        "Pending steps a real vehicle shows first, whatever its state; then it is cleared. "
        "Also: manage.py simulator_vehicle VIN --next-failure CAUSE.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vin"]
        verbose_name = "simulated vehicle"

    def __str__(self):
        return self.vin

    def is_asleep(self, now=None) -> bool:
        """Dozing: a remote first has to wake it. A vehicle being driven is awake."""
        now = now or timezone.now()
        return self.asleep and not self.in_use and (self.awake_until is None or self.awake_until <= now)

    def is_deep_asleep(self, now=None) -> bool:
        """Asleep and parked for longer than DEEP_SLEEP_AFTER: it no longer answers a wake-up."""
        now = now or timezone.now()
        return self.is_asleep(now) and self.last_driven_at is not None and now - self.last_driven_at > DEEP_SLEEP_AFTER

    def wake_ups_left(self, now=None) -> int:
        """Wake-ups still allowed this month (the count starts again each calendar month)."""
        used = self.wake_ups_used if self.wake_up_month == current_month(now) else 0
        return max(0, self.wake_up_budget - used)


def current_month(now=None) -> str:
    """The "YYYY-MM" (UTC) a wake-up spent at `now` counts against."""
    return (now or timezone.now()).astimezone(dt.UTC).strftime("%Y-%m")


class SimCallback(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    fleet = models.ForeignKey(SimFleet, on_delete=models.CASCADE, related_name="callbacks")
    subscribe = models.JSONField(
        help_text="The RemoteCallbackSubscribe body as accepted (defaults are applied when read)."
    )
    status = models.CharField(max_length=16, choices=CallbackStatus.choices, default=CallbackStatus.RUNNING)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "simulated callback"

    def __str__(self):
        webhook = (self.subscribe or {}).get("callback", {}).get("webhook", {})
        return f"{webhook.get('name') or self.id} ({self.status})"

    @property
    def remote_types(self) -> list[str]:
        return list((self.subscribe or {}).get("remoteTypes") or [])

    @property
    def target(self) -> str:
        return self.subscribe["callback"]["webhook"]["target"]

    @property
    def attributes(self) -> list[dict]:
        return list(self.subscribe["callback"]["webhook"].get("attributes") or [])


class SimRemoteAction(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    # Indexed in Meta: a plain index each, not also the `varchar_pattern_ops` copy Django adds to
    # a CharField's (no LIKE ever looks for an id; each copy cost every remote an index write).
    fleet = models.ForeignKey(SimFleet, on_delete=models.CASCADE, related_name="remote_actions", db_index=False)
    vehicle = models.ForeignKey(SimVehicle, on_delete=models.CASCADE, related_name="remote_actions", db_index=False)
    # The vendor's paths nest actions under their callback, so they go when it goes.
    callback = models.ForeignKey(SimCallback, on_delete=models.CASCADE, related_name="remote_actions", db_index=False)
    remote = models.JSONField(help_text="The Remote body as posted, label included.")
    remote_type = models.CharField(max_length=40, choices=RemoteType.choices)
    status = models.CharField(
        max_length=32,
        choices=ACTION_STATUSES,
        default=PendingStatus.ACCEPTED,
        help_text="Vendor RemoteActionStatus: follows the latest raised event.",
    )
    failure_cause = models.CharField(max_length=64, blank=True, choices=FailureCause.choices)
    feedback_detail = models.CharField(max_length=64, blank=True, choices=FeedbackDetail.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "simulated remote action"
        indexes = [
            models.Index(fields=["fleet"], name="simaction_fleet"),
            models.Index(fields=["callback"], name="simaction_callback"),
            # A remote counts the vehicle's remotes of the last minute and day (vendor._LOAD).
            models.Index(fields=["vehicle", "created_at"], name="simaction_vehicle_created"),
        ]

    def __str__(self):
        return f"{self.remote_type} {self.id} ({self.status})"

    @property
    def label(self) -> str:
        return str((self.remote or {}).get("label") or "")


class SimEvent(models.Model):
    # No constraint in the database: an action and its events are written by one statement
    # (vendor._insert_statements) and deleted together by the ORM's cascade. PostgreSQL checked
    # the key of every event a remote booked (three or four per remote), with a plan it keeps
    # per connection: made while the table was nearly empty, a scan of the whole table, which
    # never changed until the table was analysed again (no autovacuum on this machine): each
    # remote cost more than the one before it (bench/simulator.py). No index of its own
    # either: the unique (action, seq) one serves the lookups by action.
    action = models.ForeignKey(
        SimRemoteAction, on_delete=models.CASCADE, related_name="events", db_constraint=False, db_index=False
    )
    seq = models.PositiveSmallIntegerField(
        help_text="Position in the action's scenario; breaks ties between equal due times."
    )
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    status = models.CharField(max_length=32, choices=ACTION_STATUSES)
    failure_cause = models.CharField(max_length=64, blank=True, choices=FailureCause.choices)
    feedback_detail = models.CharField(max_length=64, blank=True, choices=FeedbackDetail.choices)
    effects = models.JSONField(
        default=dict,
        blank=True,
        help_text='SimVehicle fields set when this event is raised, e.g. {"doors_locked": false}.',
    )
    due_at = models.DateTimeField(help_text="When the scenario raises it; also the eventDate sent to the webhook.")
    raised_at = models.DateTimeField(null=True, blank=True, help_text="Empty until the pump raised it.")

    class Meta:
        ordering = ["due_at", "seq", "id"]
        verbose_name = "simulated event"
        constraints = [models.UniqueConstraint(fields=["action", "seq"], name="simevent_unique_seq")]
        indexes = [
            models.Index(fields=["due_at"], condition=models.Q(raised_at__isnull=True), name="simevent_unraised_due"),
            # Whether an action is still in progress (vendor._LOAD): its Done event, not raised yet.
            models.Index(
                fields=["action"],
                condition=models.Q(raised_at__isnull=True, event_type=EventType.DONE),
                name="simevent_pending_done",
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.status}"


class SimNotification(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead (gave up)"

    callback = models.ForeignKey(SimCallback, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(SimEvent, on_delete=models.CASCADE, related_name="notifications")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="HTTP POSTs made so far.")
    next_attempt_at = models.DateTimeField(
        help_text="When it may be sent next: now, the end of its batch window, or after the retry delay."
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "simulated notification"
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(state="pending"), name="simnotif_pending_due"),
        ]

    def __str__(self):
        return f"{self.event} → {self.callback_id} ({self.state})"


class SimPumpLease(models.Model):
    """One row: whoever moves `leased_until` into the future with a conditional UPDATE runs the pump.

    `armed_until` spares the database a q2 task per remote: a burst of posts enqueues one pump
    task, not one each (see `pump.enqueue_pump`).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    holder = models.CharField(max_length=64, blank=True, help_text="Token of the pump holding the lease.")
    leased_until = models.DateTimeField(help_text="The lease is free once this is past.")
    armed_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A pump task was enqueued and has not started yet; past this, it is presumed lost.",
    )

    class Meta:
        verbose_name = "simulator pump lease"

    def __str__(self):
        return f"pump lease until {self.leased_until:%H:%M:%S}"
