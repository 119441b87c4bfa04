import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ops import personal_data
from vehicles.models import Vehicle


class Command(BaseCommand):
    help = "A vehicle's personal data: `export VIN` prints it as JSON, `erase VIN --by USER` erases its positions and destinations."

    def add_arguments(self, parser):
        parser.add_argument("operation", choices=["export", "erase"])
        parser.add_argument("vin")
        parser.add_argument("--by", help="the person asking (username); required for erase, recorded in the audit log")
        parser.add_argument("--reason", default="", help="e.g. the request's reference, recorded in the audit log")

    def handle(self, *args, operation, vin, by=None, reason="", **options):
        try:
            vehicle = Vehicle.objects.select_related("fleet").get(vin=vin)
        except Vehicle.DoesNotExist:
            raise CommandError(f"No vehicle with VIN {vin}.") from None
        person = None
        if by:
            try:
                person = get_user_model().objects.get_by_natural_key(by)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {by!r}.") from None
        elif operation == "erase":
            raise CommandError("erase needs --by USER: the audit log says who erased what.")
        if operation == "export":
            data = personal_data.export_vehicle(vehicle=vehicle, by=person, reason=reason)
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
            return
        result = personal_data.erase_vehicle(vehicle=vehicle, by=person, reason=reason)
        self.stdout.write(
            f"{vin}: {result['snapshots']} status snapshot(s) and {result['destinations']} navigation destination(s) erased."
        )
        if result["open_navigation_left"]:
            self.stdout.write(
                f"{result['open_navigation_left']} navigation command(s) still in progress were left: erase again once they finish."
            )
