"""What the in-process benchmarks (bench-api, bench-history, bench-list) share: their own PostgreSQL
database, created if missing — its name must contain "bench", for a benchmark may empty it — and
Django set up on it with production settings (DEBUG off, no simulator), before they import models."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def ensure_database(url: str, who: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"{who}: the database name must contain 'bench' (it may be emptied): {name}")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            print(f"{who}: creating database {name}", file=sys.stderr)
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, who: str) -> None:
    ensure_database(url, who)
    os.environ.update(DATABASE_URL=url, DEBUG="0", SECRET_KEY="bench-only-not-a-secret", ALLOWED_HOSTS="testserver",
                      SECURE_SSL_REDIRECT="0", SIMULATOR_ENABLED="0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    django.setup()
