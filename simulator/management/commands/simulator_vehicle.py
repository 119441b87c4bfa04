"""Show a simulated vehicle, or force the cause of its next command's failure (demos, tests)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from simulator import scenario
from simulator.models import SimVehicle
from stellantis.vocabulary import FailureCause, label_of


class Command(BaseCommand):
    help = (
        "Force the next command to a simulated vehicle to end Failed with a cause "
        "(--next-failure CAUSE), clear it (--clear), or show what is set."
    )

    def add_arguments(self, parser):
        parser.add_argument("vin", help="The simulated vehicle's VIN.")
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--next-failure",
            metavar="CAUSE",
            help="A RemoteFailedEventStatus value, e.g. CidInside (case does not matter).",
        )
        action.add_argument("--clear", action="store_true", help="The next command follows the vehicle's state again.")

    def handle(self, *args, vin: str, next_failure: str | None, clear: bool, **options):
        vehicle = SimVehicle.objects.filter(vin__iexact=vin.strip()).first()
        if vehicle is None:
            raise CommandError(f"No simulated vehicle with VIN {vin}.")
        if next_failure is not None:
            cause = _cause(next_failure)
            SimVehicle.objects.filter(pk=vehicle.pk).update(next_failure=cause, updated_at=timezone.now())
            self.stdout.write(
                f"{vehicle.vin}: the next command ends Failed with {cause} ({label_of(FailureCause, cause)}), "
                f"{_where(cause)}; then it is cleared."
            )
        elif clear:
            SimVehicle.objects.filter(pk=vehicle.pk).update(next_failure="", updated_at=timezone.now())
            was = f" (was {vehicle.next_failure})" if vehicle.next_failure else ""
            self.stdout.write(f"{vehicle.vin}: no forced failure{was}; the next command follows the vehicle's state.")
        elif vehicle.next_failure:
            self.stdout.write(f"{vehicle.vin}: the next command ends Failed with {vehicle.next_failure}.")
        else:
            self.stdout.write(f"{vehicle.vin}: no forced failure; the next command follows the vehicle's state.")


def _cause(given: str) -> str:
    by_name = {value.lower(): value for value in FailureCause.values}
    cause = by_name.get(given.strip().lower())
    if cause is None:
        raise CommandError(f"Unknown failure cause {given!r}; use one of: {', '.join(FailureCause.values)}.")
    return cause


def _where(cause: str) -> str:
    return {
        "vendor": "refused by Stellantis right after Accepted",
        "wake-up": "while Stellantis tries to reach the vehicle",
        "check": "at the vendor's CheckingVehicle before an unlock or an immobilization, else at the vehicle",
        "vehicle": "answered by the vehicle after SentToVehicle",
    }[scenario.FORCED_AT[cause]]
