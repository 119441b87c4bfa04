"""Run the simulator's pump in the foreground, for running the simulator without a q2 cluster."""

import logging
import time

from django.core.management.base import BaseCommand

from simulator import pump

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Raise the simulator's due events and deliver its notifications, forever (or once with --once)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass without sleeping, then exit.")
        parser.add_argument("--idle", type=float, default=0.5, help="Seconds to wait when there is nothing to do.")

    def handle(self, *args, once: bool, idle: float, **options):
        if once:
            result = pump.run_due()
            self.stdout.write(f"{result}")
            return
        try:
            while True:
                try:
                    result = pump.pump(follow_up=False)
                except Exception:  # a database hiccup must not end a demo's pump
                    log.exception("simulator pump failed; trying again")
                    time.sleep(max(idle, 1.0))
                    continue
                if result.raised or result.delivered or result.dead:
                    self.stdout.write(
                        f"raised {result.raised}, delivered {result.delivered}, "
                        f"failed attempts {result.failed_attempts}, dead {result.dead}"
                    )
                # Another pump (a q2 task) may hold the lease, or there is simply nothing due.
                time.sleep(idle)
        except KeyboardInterrupt:
            return
