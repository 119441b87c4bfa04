"""Settings, all from the environment, each with a default that works for the embedded demo.

Production (a real Stellantis API base) fails loudly at start-up when what it needs is missing.
"""

import hashlib
import hmac
import math
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.getenv(name, default)


def _env_value(name: str) -> str | None:
    """The variable, stripped; None when unset or blank (the caller's default applies)."""
    value = os.getenv(name)
    if value is None or not value.strip():
        return None
    return value.strip()


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def env_bool(name: str, default: bool) -> bool:
    value = _env_value(name)
    if value is None:
        return default
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off, got {value!r}") from None


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _env_value(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and maximum is not None and not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value!r}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value!r}")
    return number


def env_float(name: str, default: float, *, above: float | None = None) -> float:
    """`above` is an exclusive bound: a timeout or a pace must be > 0."""
    value = _env_value(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name} must be a finite number, got {value!r}")
    if above is not None and not number > above:
        raise ImproperlyConfigured(f"{name} must be greater than {above:g}, got {value!r}")
    return number


def _hide_password(url: str) -> str:
    """The URL for an error message, without the password of its user part."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


def env_url(
    name: str, default: str, *, schemes: tuple[str, ...] = ("http", "https"), host: bool = True, keywords: tuple[str, ...] = ()
) -> str:
    """A URL whose scheme is one of `schemes` (with a host unless `host=False`), or one of `keywords`."""
    value = _env_value(name)
    if value is None:
        return default
    if value.lower() in keywords:
        return value.lower()
    prefixes = [f"{s}://" for s in sorted(schemes)]
    expected = f"a URL ({' or '.join(prefixes) if len(prefixes) <= 2 else ', '.join(prefixes)})" + (" with a host" if host else "")
    if keywords:
        expected = f"{' or '.join(repr(k) for k in keywords)} or {expected}"
    try:
        parts = urlsplit(value)
        _ = parts.port  # a ValueError for a port that is not a number in 0..65535
    except ValueError as e:
        raise ImproperlyConfigured(f"{name} must be {expected}, got {_hide_password(value)!r} ({e})") from None
    if parts.scheme not in schemes or (host and not parts.hostname):
        raise ImproperlyConfigured(f"{name} must be {expected}, got {_hide_password(value)!r}")
    return value


PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
PORTAL_PUBLIC_URL = env_url("PORTAL_PUBLIC_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

# The embedded simulator is the default vendor when DEBUG is on; a real API base switches it
# off unless asked (SIMULATOR_ENABLED, decided below once DEBUG is known).
SIMULATOR_PATH = "simulator/connectedcar/v3"
STELLANTIS_API_BASE = env_url("STELLANTIS_API_BASE", f"{PORTAL_PUBLIC_URL}/{SIMULATOR_PATH}").rstrip("/")
# Anything that is not an embedded simulator (ours or another portal's) is the real vendor.
USING_REAL_API = not STELLANTIS_API_BASE.endswith("/" + SIMULATOR_PATH)

STELLANTIS_CLIENT_ID = env_str("STELLANTIS_CLIENT_ID", "fleetportal-demo")
STELLANTIS_USER = env_str("STELLANTIS_USER")
STELLANTIS_PASSWORD = env_str("STELLANTIS_PASSWORD")
STELLANTIS_CERT = env_str("STELLANTIS_CERT")
STELLANTIS_KEY = env_str("STELLANTIS_KEY")
STELLANTIS_CA = env_str("STELLANTIS_CA")
# (connect, read) seconds for every call to Stellantis.
STELLANTIS_TIMEOUT = (env_float("STELLANTIS_CONNECT_TIMEOUT", 5.0, above=0), env_float("STELLANTIS_READ_TIMEOUT", 15.0, above=0))
# The vendor's rate limits: every worker shares one hold-off (core.ratelimit). "database" (the
# default) keeps it in a table, a redis:// URL in Redis, "process" in each process's memory.
STELLANTIS_RATE_LIMIT_STORE = env_url(
    "STELLANTIS_RATE_LIMIT_STORE", "database", schemes=("redis", "rediss"), keywords=("database", "process")
)
STELLANTIS_PACER = {"database": "core.ratelimit.DatabasePacer", "process": "stellantis.pacing.LocalPacer"}.get(
    STELLANTIS_RATE_LIMIT_STORE, "core.ratelimit.RedisPacer"
)
# A hold-off up to this many seconds (the one-second burst window) is slept through; a longer
# one (the daily limit) raises RateLimited at once, without calling Stellantis.
STELLANTIS_RATE_LIMIT_MAX_WAIT = env_float("STELLANTIS_RATE_LIMIT_MAX_WAIT", 5.0, above=0)

# Off unless asked: `make run` (bin/run) exports DEBUG=1 for the demo.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if USING_REAL_API and not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when talking to the real Stellantis API.")
    SECRET_KEY = "insecure-demo-key-only-for-the-embedded-simulator"
ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h.strip()]

# The simulator is mounted (URLs and admin) only when asked, or by default in a DEBUG demo that
# does not talk to the real API: a production start never exposes it by accident.
SIMULATOR_ENABLED = env_bool("SIMULATOR_ENABLED", DEBUG and not USING_REAL_API)
# The simulator always demands HTTP Basic credentials, "user:password". `make run` generates
# them once (.simulator-credentials); unset, they are derived from SECRET_KEY, so every process
# of one deployment agrees without configuration (with the demo SECRET_KEY that is a demo lock:
# anyone who reads this file can compute them).
SIMULATOR_CREDENTIALS = env_str("SIMULATOR_CREDENTIALS").strip() or "simulator:" + hmac.new(
    SECRET_KEY.encode(), b"fleetportal simulator credentials", hashlib.sha256
).hexdigest()[:32]
_sim_user, _, _sim_password = SIMULATOR_CREDENTIALS.partition(":")
if not _sim_user or not _sim_password:
    raise ImproperlyConfigured("SIMULATOR_CREDENTIALS must be user:password, both non-empty.")
if not USING_REAL_API:
    # The portal's client talks to a simulator: unless told otherwise, with our simulator's credentials.
    STELLANTIS_USER = STELLANTIS_USER or _sim_user
    STELLANTIS_PASSWORD = STELLANTIS_PASSWORD or _sim_password

if USING_REAL_API:
    # Mutual TLS both ways: our certificate and key, the vendor's CA, and Basic auth.
    missing = [n for n in ("STELLANTIS_USER", "STELLANTIS_PASSWORD", "STELLANTIS_CERT", "STELLANTIS_KEY", "STELLANTIS_CA") if not os.getenv(n)]
    if missing and not env_bool("STELLANTIS_ALLOW_INCOMPLETE", False):
        raise ImproperlyConfigured(
            f"STELLANTIS_API_BASE points at {STELLANTIS_API_BASE} but {', '.join(missing)} are not set."
        )
    if not STELLANTIS_API_BASE.startswith("https://"):
        raise ImproperlyConfigured(f"STELLANTIS_API_BASE must be an https URL for the real Stellantis API, got {STELLANTIS_API_BASE!r}.")
    # Stellantis posts notifications to PORTAL_PUBLIC_URL and only to a publicly trusted
    # certificate: the demo default (http://127.0.0.1) would lose every notification.
    if not os.getenv("PORTAL_PUBLIC_URL", "").strip() or not PORTAL_PUBLIC_URL.startswith("https://"):
        raise ImproperlyConfigured(
            "PORTAL_PUBLIC_URL must be set to this portal's public https address when talking to the real Stellantis API "
            f"(Stellantis posts its notifications there), got {PORTAL_PUBLIC_URL!r}."
        )

# Security: production-safe defaults with DEBUG off (HTTPS only, HSTS, secure cookies), demo-
# friendly ones with DEBUG on (`make run` serves plain http on 127.0.0.1); each one can be set.
_PRODUCTION = not DEBUG


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env_value(name)
    if value is None:
        return default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")


SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _PRODUCTION)
# A load balancer's plain-http health checks, and Prometheus scraping a web process directly.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/ready$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _PRODUCTION)
# Behind a proxy that terminates TLS: the header it sets to "https" (e.g. X-Forwarded-Proto).
# Unset by default: trusting a header no proxy overwrites would let any client claim https.
_proxy_header = _env_value("SECURE_PROXY_SSL_HEADER")
if _proxy_header is not None and not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_header):
    raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto, got {_proxy_header!r}")
SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https") if _proxy_header else None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _PRODUCTION)
SESSION_COOKIE_HTTPONLY = env_bool("SESSION_COOKIE_HTTPONLY", True)
X_FRAME_OPTIONS = env_choice("X_FRAME_OPTIONS", "DENY", ("DENY", "SAMEORIGIN"))
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("SECURE_CONTENT_TYPE_NOSNIFF", True)
SECURE_REFERRER_POLICY = env_choice(
    "SECURE_REFERRER_POLICY",
    "same-origin",
    (
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    ),
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served from our static: no CDN under script-src 'self'
    "django_q",
    "csp",
    "axes",
    "core",
    "audit",
    "accounts",
    "vehicles",
    "callbacks",
    "remotes",
    "bulk",
    "console",
    "pushes",
    "simulator",
    "idempotency",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "fleetportal.logs.RequestLogMiddleware",  # one log line per request, timing everything after it
    # Stellantis' POSTs go straight to the webhook's view: none of what follows serves them (remotes.middleware).
    "remotes.middleware.WebhookFastPath",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.timezones.TimeZoneMiddleware",  # each person's zone (after authentication: it is theirs)
    # Where a request comes from (page, admin, API; address, agent), for the audit log.
    "audit.context.AuditContextMiddleware",
    # Idempotency-Key on POSTs under /api/ (after authentication: a session's key is per person).
    "idempotency.middleware.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx: a page answers its own live fragments
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lock-out raised during authentication into its answer.
    "axes.middleware.AxesMiddleware",
]
# The simulator's remote POST goes straight to its view too, when it is mounted (simulator.middleware).
if SIMULATOR_ENABLED:
    MIDDLEWARE.insert(MIDDLEWARE.index("remotes.middleware.WebhookFastPath") + 1, "simulator.middleware.SimulatorFastPath")

ROOT_URLCONF = "fleetportal.urls"
WSGI_APPLICATION = "fleetportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "remotes.context_processors.approvals_waiting",
            ],
        },
    },
]

# Any scheme dj_database_url knows (sqlite, postgres, postgresql, …); sqlite and a PostgreSQL socket have no host.
DATABASE_URL = env_url("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}", schemes=tuple(dj_database_url.ENGINE_SCHEMES), host=False)
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60, minimum=0))}
except ValueError as e:
    raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {e}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web threads, q2 workers and the simulator all write to one file: WAL lets readers run
    # beside the writer, IMMEDIATE takes the write lock at BEGIN (no deadlock-prone upgrade
    # from a read lock) and the timeout makes a busy writer wait instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a q2 cluster started by the end-to-end tests sees the same data;
    # one per test process, so two test runs on one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": env_str("SQLITE_TEST_NAME", str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out username+address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# E-mail (invitations, password resets): printed on the console in a DEBUG demo, SMTP otherwise
# (Django's EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS).
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or ("django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "fleetportal <fleetportal@localhost>"
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, above=0)  # a mail server that hangs must not hold a request

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# Content-Security-Policy (django-csp): scripts only from our own static files (no inline
# script, no eval), so injected markup cannot run code. Styles allow inline: the Django admin's
# own templates use a <style> block and style attributes; a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        # Map tiles come from OpenStreetMap, fetched by the user's browser (no proxy of ours);
        # the map still shows its markers where they cannot load.
        "img-src": ["'self'", "data:", "https://tile.openstreetmap.org", "https://*.tile.openstreetmap.org"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Login attempts (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is refused (429) for AXES_COOLOFF_MINUTES, on /login/ and the admin's
# login alike; other users and addresses are unaffected. A successful login clears the count.
# Attempts are rows in the database (shared by every process); `axes_reset` lifts a lock.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1)
AXES_COOLOFF_TIME = AXES_COOLOFF_MINUTES / 60  # hours, as django-axes reads a number
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# "shared": a cache every process sees (the API's throttle counts): Redis when CACHE_URL (or
# REDIS_URL) is a redis:// URL, else a database table (`fleetportal_cache`, made by core's
# migrations). "default" stays in each process's memory, as before: django-q2 writes its
# cluster stats there every guard cycle, which a database table would turn into constant writes.
CACHE_URL = env_url("CACHE_URL", "", schemes=("redis", "rediss")) or env_url("REDIS_URL", "", schemes=("redis", "rediss"))
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {
            "BACKEND": "fleetportal.cache.UpsertDatabaseCache",  # Django's DatabaseCache, one statement per write
            "LOCATION": "fleetportal_cache",
        }
    ),
}

# The partner API's rate per token ("120/min"; s, min, hour or day), or "off".
API_THROTTLE_RATE = (_env_value("API_THROTTLE_RATE") or "120/min").lower()
if API_THROTTLE_RATE == "off":
    API_THROTTLE_RATE = None
elif not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", API_THROTTLE_RATE):
    raise ImproperlyConfigured(f"API_THROTTLE_RATE must look like 120/min (per s, min, hour or day) or be 'off', got {API_THROTTLE_RATE!r}")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.PartnerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    # Every API error in one shape (fleetportal/api.py).
    "EXCEPTION_HANDLER": "fleetportal.api.exception_handler",
    # Per token (fleetportal/throttling.py), counted in the shared cache; 429 `throttled` with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": ["fleetportal.throttling.PartnerRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"partner": API_THROTTLE_RATE},
    # OpenAPI 3 by drf-spectacular, with the problem responses and Idempotency-Key added (fleetportal/schema.py).
    "DEFAULT_SCHEMA_CLASS": "fleetportal.schema.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "fleetportal partner API",
    "DESCRIPTION": "Fleets, vehicles and remote commands of your organisation (docs/partner-api.md).",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["fleetportal.schema.preprocess"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "fleetportal.schema.postprocess"],
    "ENUM_NAME_OVERRIDES": {"ActionStatusEnum": "remotes.models.ActionStatus", "RemoteTypeEnum": "stellantis.vocabulary.RemoteType"},
}

# django-q2. `retry` is well above `timeout`: a task is only handed to a second worker when
# the first one is surely dead, and the submit task's claim makes that second run a no-op.
Q2_BROKER = env_url("Q2_BROKER", "orm", schemes=("redis", "rediss"), keywords=("orm",))
Q_CLUSTER = {
    "name": "fleetportal",
    "workers": env_int("Q2_WORKERS", 4, minimum=1),
    "timeout": 60,
    "retry": 300,
    "max_attempts": 3,
    "queue_limit": 50,
    "catch_up": False,
    "poll": 0.2,
    "guard_cycle": env_float("Q2_GUARD_CYCLE", 0.5, above=0),
    "label": "Task queue",
}
if Q2_BROKER.startswith("redis://") or Q2_BROKER.startswith("rediss://"):
    Q_CLUSTER["redis"] = Q2_BROKER
else:
    Q_CLUSTER["orm"] = "default"
# q2's cluster stats stay in each process's memory; `ops.health.HeartbeatCache` also writes a
# heartbeat into the shared cache every Q2_HEARTBEAT_SECONDS (the ORM broker's case: with Redis,
# q2 keeps its stats there), which /healthz/ready wants younger than Q2_HEARTBEAT_MAX_AGE.
Q_CLUSTER["cache"] = "q2"
CACHES["q2"] = {"BACKEND": "ops.health.HeartbeatCache"}
Q2_HEARTBEAT_SECONDS = env_float("Q2_HEARTBEAT_SECONDS", 10.0, above=0)
Q2_HEARTBEAT_MAX_AGE = env_int("Q2_HEARTBEAT_MAX_AGE", 60, minimum=1)

# Metrics (ops.metrics, docs/operations.md "Metrics and health"): /metrics answers a request
# carrying `Authorization: Bearer <METRICS_TOKEN>`; without a token the page does not exist
# (404), which is production's default. The demo (DEBUG) derives one from SECRET_KEY, as it
# does the simulator's credentials (a demo lock: anyone with the demo SECRET_KEY can compute it).
METRICS_TOKEN = env_str("METRICS_TOKEN").strip()
if not METRICS_TOKEN and DEBUG:
    METRICS_TOKEN = "metrics-" + hmac.new(SECRET_KEY.encode(), b"fleetportal metrics token", hashlib.sha256).hexdigest()[:32]
if METRICS_TOKEN and (len(METRICS_TOKEN) < 16 or not (METRICS_TOKEN.isascii() and METRICS_TOKEN.isprintable()) or " " in METRICS_TOKEN):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 printable ASCII characters without spaces (e.g. `openssl rand -hex 24`).")

# Remote actions
# An action not handed to Stellantis within this many seconds is expired, never sent late.
REMOTE_ACTION_TTL = env_int("REMOTE_ACTION_TTL", 300, minimum=1)
# A worker that claimed an action and went silent this long is presumed dead.
REMOTE_SUBMIT_CLAIM_TIMEOUT = env_int("REMOTE_SUBMIT_CLAIM_TIMEOUT", 90, minimum=1)
# Backoff (seconds) between ambiguous submit attempts.
REMOTE_SUBMIT_BACKOFF = [env_int("REMOTE_SUBMIT_BACKOFF_BASE", 5, minimum=0) * (2**i) for i in range(4)]
# After a POST with no clear answer, the command is looked up by its label for this long
# before it is ever sent again: Stellantis may act on a request well after it (or its
# answer) seemed lost. Unlock, immobilization and stolen are never resent by themselves.
REMOTE_LOOKUP_WINDOW = env_int("REMOTE_LOOKUP_WINDOW", 180, minimum=0)
# Bulk requests (bulk app, docs/architecture.md "Bulk requests"). Submissions in flight at once
# (never above the vendor's burst limit, when known); vehicles checked per chunk; items taken per
# round of the dispatcher (between two looks at the bulk's status); seconds of work per q2 task,
# well inside Q_CLUSTER's 60 s timeout.
BULK_CONCURRENCY = env_int("BULK_CONCURRENCY", 16, minimum=1, maximum=256)
BULK_CHUNK = env_int("BULK_CHUNK", 500, minimum=1)
BULK_DISPATCH_CHUNK = env_int("BULK_DISPATCH_CHUNK", 200, minimum=1)
# Actions created per transaction (claimed for sending), handed to the submitting threads as it
# commits; also how many accepted ones are written at once. 50: the statements per batch weigh
# little per command (docs/benchmarks.md), and a batch waits well under a second for its threads.
BULK_CREATE_BATCH = env_int("BULK_CREATE_BATCH", 50, minimum=1)
BULK_SLICE_SECONDS = env_float("BULK_SLICE_SECONDS", 30.0, above=0)
# Dispatchers that may work one bulk at once, each with BULK_CONCURRENCY submissions in flight, on
# whichever q2 workers are free (a second cluster's included: docs/operations.md, "Scaling out").
# With a known burst limit, the lanes of a bulk share it.
BULK_LANES = env_int("BULK_LANES", 2, minimum=1, maximum=16)
# The vendor's limits as the dry run and the dispatcher assume them (0: unknown). The embedded
# simulator's own limits by default; the real vendor's from its contract.
BULK_VENDOR_BURST_LIMIT = env_int("BULK_VENDOR_BURST_LIMIT", 0 if USING_REAL_API else env_int("SIMULATOR_RATE_LIMIT_PER_SECOND", 0), minimum=0)
BULK_VENDOR_DAY_LIMIT = env_int("BULK_VENDOR_DAY_LIMIT", 0 if USING_REAL_API else env_int("SIMULATOR_RATE_LIMIT_PER_DAY", 0), minimum=0)
# One POST's round trip, for the dry run's duration estimate.
BULK_EXPECTED_LATENCY_MS = env_int("BULK_EXPECTED_LATENCY_MS", 300, minimum=1)
# Actions with no Done event this long after submission are read back from Stellantis,
# at most once per RECONCILE_EVERY; past the vendor's 3-day horizon they end as errors.
REMOTE_RECONCILE_AFTER = env_int("REMOTE_RECONCILE_AFTER", 180, minimum=0)
REMOTE_RECONCILE_EVERY = env_int("REMOTE_RECONCILE_EVERY", 300, minimum=0)
# Header the portal adds to each callback so our webhook can authenticate Stellantis.
WEBHOOK_SECRET_HEADER = "X-Fleetportal-Secret"
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1_000_000, minimum=1)
# Push (pushes app): partner webhook endpoints. A failed push is retried after BASE × 1, 6, 24,
# 120, 720… seconds (5 s, 30 s, 2 min, 10 min, 1 h with the default); tests make it short.
PUSH_RETRY_BASE_SECONDS = env_float("PUSH_RETRY_BASE_SECONDS", 5.0, above=0)
# Loopback, private and link-local endpoint addresses: refused in production (a partner URL must
# not reach into our network), allowed in the demo, whose receivers run on 127.0.0.1.
PUSH_ALLOW_PRIVATE_TARGETS = env_bool("PUSH_ALLOW_PRIVATE_TARGETS", DEBUG or SIMULATOR_ENABLED)

# Retention (ops.retention, the hourly `ops-retention` schedule and `manage.py prune`): days each
# kind is kept, 0 = forever. Flagged deliveries stay until reviewed; the audit log is never pruned.
RETENTION_DELIVERIES_DAYS = env_int("RETENTION_DELIVERIES_DAYS", 30, minimum=0)
RETENTION_TASKS_DAYS = env_int("RETENTION_TASKS_DAYS", 30, minimum=0)
RETENTION_SNAPSHOTS_DAYS = env_int("RETENTION_SNAPSHOTS_DAYS", 90, minimum=0)
RETENTION_ACTIONS_DAYS = env_int("RETENTION_ACTIONS_DAYS", 730, minimum=0)

# Simulator
# Multiplies the simulated vehicles' pace: 1 is real-world-ish, tests run at 50.
SIMULATOR_SPEED = env_float("SIMULATOR_SPEED", 1.0, above=0)
SIMULATOR_SEED = env_int("SIMULATOR_SEED", 42)
SIMULATOR_WEBHOOK_TIMEOUT = env_float("SIMULATOR_WEBHOOK_TIMEOUT", 5.0, above=0)
# Each answer of the simulated API takes this long (± a uniform jitter), as the real vendor's
# round trip does, so the portal's dispatch can be measured against it. 0: as fast as it can.
SIMULATOR_LATENCY_MS = env_int("SIMULATOR_LATENCY_MS", 0, minimum=0)
SIMULATOR_LATENCY_JITTER_MS = env_int("SIMULATOR_LATENCY_JITTER_MS", 0, minimum=0)
# Rate limits of the simulated API per client_id, counted in the database so every worker
# shares them; answered with the vendor's X-RateLimit-* headers and 429. 0: no limit, no headers.
SIMULATOR_RATE_LIMIT_PER_DAY = env_int("SIMULATOR_RATE_LIMIT_PER_DAY", 0, minimum=0)
SIMULATOR_RATE_LIMIT_PER_SECOND = env_int("SIMULATOR_RATE_LIMIT_PER_SECOND", 0, minimum=0)
# The length of the "day" window, in seconds (shorten it to watch a spent day end).
SIMULATOR_RATE_LIMIT_DAY_SECONDS = env_int("SIMULATOR_RATE_LIMIT_DAY_SECONDS", 86400, minimum=1)
# When that day turns, in seconds after 00:00 UTC (a vendor in Paris turns its day at 82800 in
# winter). The windows are fixed, as the vendor's are: a day turns at the same time for every client.
SIMULATOR_RATE_LIMIT_DAY_STARTS_AT = env_int("SIMULATOR_RATE_LIMIT_DAY_STARTS_AT", 0, minimum=0)
# How the simulated collections link to their next page: "token" (pageToken) or "index"
# (indexRange, the way the vendor's documentation describes).
SIMULATOR_PAGING = (_env_value("SIMULATOR_PAGING") or "token").lower()
if SIMULATOR_PAGING not in ("token", "index"):
    raise ImproperlyConfigured(f"SIMULATOR_PAGING must be 'token' or 'index', got {SIMULATOR_PAGING!r}")
# A simulated callback turns Failed (posts nothing until resumed) once its webhook refused every
# retry of this many notifications in a row; the retry delays, hence the time it takes, follow SIMULATOR_SPEED.
SIMULATOR_CALLBACK_FAIL_AFTER = env_int("SIMULATOR_CALLBACK_FAIL_AFTER", 5, minimum=1)

# Where the tests and tools find the vendor's OpenAPI files.
STELLANTIS_REFERENCE_DIR = Path(env_str("STELLANTIS_REFERENCE_DIR", str(BASE_DIR.parent / "shared" / "reference" / "stellantis")))

# Logs (fleetportal/logs.py): one JSON object per line on stderr, the format log collectors
# read (not stdout: `seed_demo --json`, `dumpdata` and bin/run read commands' stdout as data);
# LOG_FORMAT=text for humans, the default with DEBUG (`make run`). Every handler masks
# secrets (RedactFilter): Django's own loggers lose their handlers (mail_admins, runserver's)
# and reach ours. SQL is never logged, whatever LOG_LEVEL: its parameters hold secrets.
LOG_FORMAT = env_choice("LOG_FORMAT", "text" if DEBUG else "json", ("json", "text"))
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "fleetportal.logs.RedactFilter"}},
    "formatters": {
        "json": {"()": "fleetportal.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": LOG_FORMAT, "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # runserver's access line repeats ours, with the query string.
        "django.server": {"handlers": [], "propagate": True, "level": "WARNING"},
    },
}

# Demo users made by `seed_demo` (embedded simulator only).
DEMO_ADMIN_PASSWORD = env_str("DEMO_ADMIN_PASSWORD", "fleetportal-demo")
