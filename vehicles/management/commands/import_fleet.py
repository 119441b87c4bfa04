from django.core.management.base import BaseCommand, CommandError

from stellantis.errors import StellantisError
from vehicles import services


class Command(BaseCommand):
    help = "Import fleets and their vehicles from Stellantis (all pages). Without ids: every fleet of the account."

    def add_arguments(self, parser):
        parser.add_argument("fleet_ids", nargs="*", help="Stellantis fleet ids (fid)")

    def handle(self, *args, fleet_ids, **options):
        try:
            if fleet_ids:
                results = [services.import_fleet(fleet_id=fid) for fid in fleet_ids]
            else:
                results = services.import_all_fleets()
        except StellantisError as exc:
            raise CommandError(f"Import failed, nothing changed for the fleet in progress: {exc}") from exc
        for r in results:
            self.stdout.write(f"{r.fleet.name} ({r.fleet.external_id}): {r.created} new, {r.updated} refreshed")
        if not results:
            self.stdout.write("No fleet found at Stellantis.")
