import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from callbacks.models import Callback
from callbacks.services import create_callback
from simulator.seeding import seed_world
from stellantis.errors import RateLimited, StellantisError, VendorUnavailable
from stellantis.vocabulary import CallbackStatus, RemoteType
from vehicles.models import Vehicle
from vehicles.services import import_fleet

DEMO_FLEET = "Demo fleet"
DEFAULT_CALLBACK_LABEL = "Default — every remote type"


class Command(BaseCommand):
    help = (
        "Seed the embedded simulator with a 50-vehicle fleet, import it through the Stellantis client, "
        "create a Running callback for every remote type, an admin and a partner token. Idempotent. "
        "The web server must be up (the import goes over HTTP, as it would with the real API)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print exactly one JSON object and nothing else.")
        parser.add_argument("--vehicles", type=int, default=50)

    def handle(self, *args, **options):
        if not settings.SIMULATOR_ENABLED:
            raise CommandError("seed_demo seeds the embedded simulator, which is off (a real STELLANTIS_API_BASE is set).")
        sim_fleet = seed_world(fleet_name=DEMO_FLEET, vehicle_count=options["vehicles"], seed=settings.SIMULATOR_SEED)
        try:
            result = import_fleet(fleet_id=sim_fleet.id)
            fleet = result.fleet
            callback = Callback.objects.filter(fleet=fleet, label=DEFAULT_CALLBACK_LABEL).exclude(external_id="").first()
            if callback is None:
                callback = create_callback(fleet=fleet, remote_types=list(RemoteType.values), label=DEFAULT_CALLBACK_LABEL)
        except RateLimited as exc:
            raise CommandError(f"The simulator at {settings.STELLANTIS_API_BASE} asks us to slow down ({exc}); try again then.") from exc
        except VendorUnavailable as exc:
            raise CommandError(
                f"The simulator at {settings.STELLANTIS_API_BASE} is not reachable ({exc}). Start the web server first "
                "(make run does it for you)."
            ) from exc
        except StellantisError as exc:
            raise CommandError(f"Stellantis (simulated) refused: {exc}") from exc
        if callback.status != CallbackStatus.RUNNING:
            self.stderr.write(f"Note: the default callback is {callback.status}.")

        User = get_user_model()
        # The demo password is set only when `admin` is created: `make run` seeds on every start
        # and must not undo a password someone changed. It is shown only while it still works.
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            admin = User.objects.create_superuser("admin", "admin@example.com", settings.DEMO_ADMIN_PASSWORD)
        admin_password = settings.DEMO_ADMIN_PASSWORD if admin.check_password(settings.DEMO_ADMIN_PASSWORD) else None

        partner, _ = User.objects.get_or_create(username="partner", defaults={"email": "partner@example.com"})
        partner.set_unusable_password()
        partner.save()
        partner.user_permissions.add(*Permission.objects.filter(codename__in=["request_remote", "request_dangerous_remote"]))
        token, _ = Token.objects.get_or_create(user=partner)

        vins = list(Vehicle.objects.filter(fleet=fleet).order_by("vin").values_list("vin", flat=True))
        summary = {
            "admin_username": admin.username,
            "admin_password": admin_password,
            "api_token": token.key,
            "fleet_id": fleet.external_id,
            "vins": vins,
            # The simulator's HTTP Basic credentials (it always demands them).
            "simulator_user": settings.SIMULATOR_CREDENTIALS.partition(":")[0],
            "simulator_password": settings.SIMULATOR_CREDENTIALS.partition(":")[2],
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(f"Fleet {fleet.name} ({fleet.external_id}): {len(vins)} vehicles")
        self.stdout.write(f"Callback {callback} ({callback.external_id}), {callback.status}")
        self.stdout.write(f"Admin: {admin.username} / {admin_password or '(changed since seeding: not shown)'}")
        self.stdout.write(f"Partner API token: {token.key}")
