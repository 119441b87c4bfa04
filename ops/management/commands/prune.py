from django.core.management.base import BaseCommand

from ops import retention


class Command(BaseCommand):
    help = "Apply the retention limits (RETENTION_*_DAYS) in short batches; --dry-run only says what would go."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
        parser.add_argument(
            "--budget", type=float, default=None,
            help=f"stop after this many seconds (default: until done; the q2 schedule uses {retention.TIME_BUDGET_SECONDS:g})",
        )

    def handle(self, *args, dry_run=False, budget=None, **options):
        reports = retention.prune(dry_run=dry_run, budget=budget)
        for report in reports:
            self.stdout.write(report.line(dry_run=dry_run))
