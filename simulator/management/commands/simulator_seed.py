"""Create (or find again) a simulated fleet: same name and seed, same vehicles."""

from django.conf import settings
from django.core.management.base import BaseCommand

from simulator.seeding import seed_world


class Command(BaseCommand):
    help = "Seed the simulator with a fleet of plausible vehicles (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="Demo fleet")
        parser.add_argument("--vehicles", type=int, default=130)
        parser.add_argument("--seed", type=int, default=settings.SIMULATOR_SEED)

    def handle(self, *args, name: str, vehicles: int, seed: int, **options):
        fleet = seed_world(fleet_name=name, vehicle_count=vehicles, seed=seed)
        self.stdout.write(f"fleet {fleet.id} '{fleet.name}': {fleet.vehicles.count()} vehicles")
