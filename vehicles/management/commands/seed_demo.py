import hashlib
import hmac
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Membership, Organisation, PartnerToken, Role, Scope
from callbacks.models import Callback
from callbacks.services import create_callback
from simulator.models import SimVehicle
from simulator.seeding import seed_world
from simulator.wire import onboard_capabilities
from stellantis.errors import RateLimited, StellantisError, VendorUnavailable
from stellantis.vocabulary import CallbackStatus, RemoteType
from vehicles.models import Fleet, Vehicle
from vehicles.services import import_fleet, refresh_status

DEMO_FLEET = "Demo fleet"
OTHER_FLEET = "Other fleet"
OTHER_FLEET_VEHICLES = 12
# Up to this many vehicles the demo fleet is imported through the Stellantis client (one call per
# vehicle for its capabilities); beyond, the fleet is grown in bulk (`Command._grow`).
IMPORT_OVER_HTTP_UP_TO = 50
DEFAULT_CALLBACK_LABEL = "Default — every remote type"
DEMO_ORG = ("Demo Logistics", "demo")
OTHER_ORG = ("Other Rentals", "other")

ALL_SCOPES = [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND]
# The main partner token also manages callbacks and push endpoints (the partner API's checks
# register an endpoint with it); the approver's stays to commands.
PARTNER_SCOPES = [*ALL_SCOPES, Scope.CALLBACKS]


class Command(BaseCommand):
    help = (
        "Seed the embedded simulator with two organisations: Demo Logistics (a 50-vehicle fleet, its people "
        "with each role, partner tokens) and Other Rentals (a 12-vehicle fleet), import both through the "
        "Stellantis client and give each a Running callback for every remote type. Idempotent. "
        "The web server must be up (the import goes over HTTP, as it would with the real API)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print exactly one JSON object and nothing else.")
        parser.add_argument(
            "--vehicles", type=int, default=50,
            help="Grow the demo fleet to this many simulated vehicles, imported into the portal (10,000 take seconds). Idempotent.",
        )

    def handle(self, *args, **options):
        if not settings.SIMULATOR_ENABLED:
            raise CommandError("seed_demo seeds the embedded simulator, which is off (a real STELLANTIS_API_BASE is set).")
        demo_org = self._organisation(*DEMO_ORG)
        other_org = self._organisation(*OTHER_ORG)
        fleet, callback = self._fleet(DEMO_FLEET, options["vehicles"], demo_org)
        other_fleet, other_callback = self._fleet(OTHER_FLEET, OTHER_FLEET_VEHICLES, other_org)

        admin, admin_password = self._person("admin", demo_org, Role.ADMIN, superuser=True)
        approver, approver_password = self._person("approver", demo_org, Role.APPROVER)
        operator, operator_password = self._person("operator", demo_org, Role.OPERATOR)
        viewer, viewer_password = self._person("viewer", demo_org, Role.VIEWER)
        other_admin, other_password = self._person("other-admin", other_org, Role.ADMIN)
        people = [
            (admin, admin_password, f"superuser, admin of {demo_org}"), (approver, approver_password, f"approver, {demo_org}"),
            (operator, operator_password, f"operator, {demo_org}"), (viewer, viewer_password, f"viewer, {demo_org}"),
            (other_admin, other_password, f"admin of {other_org}"),
        ]

        summary = {
            "admin_username": admin.username,
            "admin_password": admin_password,
            "api_token": self._token(demo_org, admin, "Demo partner", PARTNER_SCOPES),
            "limited_api_token": self._token(demo_org, admin, "Demo partner, no dangerous commands", [Scope.READ, Scope.COMMAND]),
            "viewer_api_token": self._token(demo_org, admin, "Demo dashboard, read only", [Scope.READ]),
            "approver_api_token": self._token(demo_org, approver, "Demo approver", ALL_SCOPES),
            "fleet_id": fleet.external_id,
            "vins": self._vins(fleet),
            "other_org": {
                "admin_username": other_admin.username,
                "admin_password": other_password,
                "api_token": self._token(other_org, other_admin, "Other partner", PARTNER_SCOPES),
                "fleet_id": other_fleet.external_id,
                "vins": self._vins(other_fleet),
            },
            # The simulator's HTTP Basic credentials (it always demands them).
            "simulator_user": settings.SIMULATOR_CREDENTIALS.partition(":")[0],
            "simulator_password": settings.SIMULATOR_CREDENTIALS.partition(":")[2],
            # GET /metrics with `Authorization: Bearer <this>` (docs/operations.md, "Metrics and health").
            "metrics_token": settings.METRICS_TOKEN,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        for org, f, cb in ((demo_org, fleet, callback), (other_org, other_fleet, other_callback)):
            self.stdout.write(f"{org}: fleet {f.name} ({f.external_id}), {f.vehicles.count()} vehicles; callback {cb} ({cb.external_id}), {cb.status}")
        for user, password, what in people:
            self.stdout.write(f"Login: {user.username} / {password or '(changed since seeding: not shown)'} ({what})")
        for key in ("api_token", "limited_api_token", "viewer_api_token", "approver_api_token"):
            self.stdout.write(f"{key}: {summary[key] or '(revoked or expired: not shown)'}")

    def _organisation(self, name, slug):
        return Organisation.objects.get_or_create(slug=slug, defaults={"name": name})[0]

    def _fleet(self, name, vehicle_count, organisation):
        # A large demo fleet is seeded in two steps: the usual fleet, imported through the client
        # like any other, then grown (see _grow). The first vehicles are the same either way:
        # seeding draws them in the same order.
        sim_fleet = seed_world(fleet_name=name, vehicle_count=min(vehicle_count, IMPORT_OVER_HTTP_UP_TO), seed=settings.SIMULATOR_SEED)
        try:
            fleet = Fleet.objects.filter(external_id=sim_fleet.id).first()
            if fleet is None or fleet.vehicles.count() <= IMPORT_OVER_HTTP_UP_TO:  # a grown one is not read again one by one
                fleet = import_fleet(fleet_id=sim_fleet.id, organisation=organisation).fleet
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
            self.stderr.write(f"Note: the default callback of {fleet} is {callback.status}.")
        self._read_statuses(fleet)
        if vehicle_count > IMPORT_OVER_HTTP_UP_TO:
            self._grow(fleet, name, vehicle_count)
        return fleet, callback

    def _read_statuses(self, fleet):
        """Read the latest status of the imported vehicles that have none yet, as a first State refresh
        would: the console (overview, list, map) then shows where they are and how they are doing.
        Idempotent; a vehicle whose status cannot be read is left without one (the page says "never seen")."""
        for vehicle in fleet.vehicles.filter(status_snapshot__isnull=True).select_related("fleet").order_by("vin")[:IMPORT_OVER_HTTP_UP_TO]:
            try:
                refresh_status(vehicle=vehicle)
            except StellantisError as exc:
                self.stderr.write(f"Note: no status for {vehicle.vin} ({exc}).")

    def _grow(self, fleet, name, vehicle_count):
        """Grow the simulated fleet to `vehicle_count` and bring the new vehicles into the portal.

        One capabilities call per vehicle over HTTP took minutes for 10,000; here the simulator's
        own rows are copied with the capabilities its API would answer (`onboard_capabilities`),
        in bulk. Idempotent: vehicles already in the portal are left alone."""
        sim_fleet = seed_world(fleet_name=name, vehicle_count=vehicle_count, seed=settings.SIMULATOR_SEED)
        known = set(Vehicle.objects.filter(fleet=fleet).values_list("vin", flat=True))
        new = [
            Vehicle(
                fleet=fleet, vin=sv.vin, external_id=sv.id, brand=sv.brand, motorization=sv.motorization,
                capabilities=onboard_capabilities(sv),
            )
            for sv in SimVehicle.objects.filter(fleet=sim_fleet).order_by("vin").iterator(chunk_size=2000)
            if sv.vin not in known
        ]
        Vehicle.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        Fleet.objects.filter(pk=fleet.pk).update(last_synced_at=timezone.now())

    def _person(self, username, organisation, role, *, superuser=False):
        """A demo person with `role`; (user, the demo password while it still works, else None).

        The password is set only when the person is created: `make run` seeds on every start
        and must not undo a password someone changed."""
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            make = User.objects.create_superuser if superuser else User.objects.create_user
            # Staff: the Django admin (bulk commands, raw deliveries) shows each person only
            # their organisation's rows and the actions their role allows.
            user = make(username, f"{username}@example.com", settings.DEMO_ADMIN_PASSWORD, is_staff=True)
        Membership.objects.get_or_create(user=user, organisation=organisation, defaults={"role": role})
        return user, (settings.DEMO_ADMIN_PASSWORD if user.check_password(settings.DEMO_ADMIN_PASSWORD) else None)

    def _token(self, organisation, user, name, scopes) -> str | None:
        """A demo token's key, the same on every run; None once someone revoked it or it expired.

        Only a hash is stored, so a demo key is derived from SECRET_KEY (never a real
        partner's: those are random and shown once)."""
        digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-token:{organisation.slug}:{name}".encode(), hashlib.sha256).hexdigest()
        key = PartnerToken.make_key(digest[:8], digest[8:])
        token = PartnerToken.objects.filter(prefix=digest[:8]).first()
        if token is None:
            token, _ = PartnerToken.issue(organisation=organisation, user=user, name=name, scopes=scopes, key=key)
        elif token.is_usable and sorted(token.scopes) != sorted(scopes):
            # A demo seeded by an earlier version: its tokens get the scopes this one promises.
            PartnerToken.objects.filter(pk=token.pk).update(scopes=sorted(scopes))
        return key if token.is_usable and token.matches(key) else None

    def _vins(self, fleet):
        return list(Vehicle.objects.filter(fleet=fleet).order_by("vin").values_list("vin", flat=True))
