from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organisation
from core.errors import ServiceError
from stellantis.errors import StellantisError
from vehicles import services


class Command(BaseCommand):
    help = "Import fleets and their vehicles from Stellantis (all pages). Without ids: every fleet of the account."

    def add_arguments(self, parser):
        parser.add_argument("fleet_ids", nargs="*", help="Stellantis fleet ids (fid)")
        parser.add_argument(
            "--organisation", metavar="SLUG",
            help="Give new fleets to this organisation (without it they are seen by superusers only until given one in the admin).",
        )

    def handle(self, *args, fleet_ids, organisation, **options):
        org = None
        if organisation:
            org = Organisation.objects.filter(slug=organisation).first()
            if org is None:
                raise CommandError(f"No organisation with slug {organisation!r}.")
        try:
            if fleet_ids:
                results = [services.import_fleet(fleet_id=fid, organisation=org) for fid in fleet_ids]
            else:
                results = services.import_all_fleets(organisation=org)
        except (StellantisError, ServiceError) as exc:
            raise CommandError(f"Import failed, nothing changed for the fleet in progress: {exc}") from exc
        for r in results:
            self.stdout.write(f"{r.fleet.name} ({r.fleet.external_id}): {r.created} new, {r.updated} refreshed")
        if not results:
            self.stdout.write("No fleet found at Stellantis.")
