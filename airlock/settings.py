"""Airlock settings. Everything comes from the environment and fails loudly.

Embedded defaults (SQLite, a filesystem Celery broker) let `make run` work with
no servers; DATABASE_URL and CELERY_BROKER_URL switch to PostgreSQL and Redis.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from audit import task_names as audit_task_names
from broker import task_names
from lib.partner_idps import parse_partners
from lib.secrets import read_secret

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = read_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Where runtime state lives for the embedded defaults (SQLite file, broker folders).
VAR_DIR = Path(env.str("AIRLOCK_VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "airlock",
    "accounts.admin_config.AirlockAdminConfig",  # the admin behind Airlock's sign-in and MFA
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "audit",
    "broker",
    "accounts",
    "approvals",
    "integrations.slack",
    "integrations.mail",
]

MIDDLEWARE = [
    "airlock.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "airlock.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "broker.model_audit.AuditContextMiddleware",
    "airlock.middleware.ExternalAccountsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "airlock.urls"
WSGI_APPLICATION = "airlock.wsgi.application"

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
                "airlock.context_processors.airlock",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'airlock.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat are separate processes sharing one file: take the
    # write lock when a transaction begins so they queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# Keep each process's connection between requests: a new PostgreSQL connection
# per request cost more than the request itself (bench/README.md, submissions).
# A connection broken meanwhile is noticed and replaced before it is used.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The owner of Airlock's tables, for `migrate` only: Airlock itself runs as the
# role of DATABASE_URL, which may append to the audit trail but not rewrite it
# (airlock/database_roles.py, README "Two database roles"). Give this URL to the
# migrate job alone, never to the web or worker processes.
_owner_url = env.str("DATABASE_MIGRATE_URL", default="")
AIRLOCK_DATABASE_OWNER = env.db_url_config(_owner_url) if _owner_url else None
if AIRLOCK_DATABASE_OWNER is not None:
    _owner, _runtime = AIRLOCK_DATABASE_OWNER, DATABASES["default"]
    if not (
        _owner["ENGINE"] == _runtime["ENGINE"] == "django.db.backends.postgresql"
        and _owner["NAME"] == _runtime["NAME"]
        and _owner["USER"]
        and _runtime["USER"]
        and _owner["USER"] != _runtime["USER"]
    ):
        raise ImproperlyConfigured(
            "DATABASE_MIGRATE_URL must name the same PostgreSQL database as DATABASE_URL, "
            "each URL with a user of its own: the tables' owner, and the role Airlock runs as"
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves the few static files straight from the source tree.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True

# Login throttling counters live here; use a shared cache (CACHE_URL=redis://...)
# when several web processes serve Airlock.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Django's password sign-in, refusing a third party whose access is over.
AUTHENTICATION_BACKENDS = ["broker.web.auth.PasswordBackend"]

# OpenID Connect single sign-on, on when a client id is set.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_ENABLED:
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.insert(0, "accounts.oidc.AirlockOIDCBackend")
    OIDC_RP_CLIENT_SECRET = read_secret("OIDC_RP_CLIENT_SECRET")
    # The `iss` of the IdP's ID tokens, exactly (e.g. https://idp.example.com/realms/x):
    # a token from any other issuer is refused, and accounts are bound to issuer+subject.
    OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
    OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
    OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile groups")
# Which claim carries the user's IdP groups, and which IdP group means which
# Airlock group. Only groups named here are managed from the IdP.
# Seconds to connect to and to read from an identity provider: one that stops
# answering must not hold a web worker for ever.
OIDC_TIMEOUT = (5, 10)
AIRLOCK_OIDC_GROUPS_CLAIM = env.str("AIRLOCK_OIDC_GROUPS_CLAIM", default="groups")
AIRLOCK_OIDC_GROUP_MAP = env.json("AIRLOCK_OIDC_GROUP_MAP", default={})
# Partners' own identity providers, through which their third parties sign in
# (lib/partner_idps.py says what each entry holds); checked here, at start.
AIRLOCK_PARTNER_OIDC = parse_partners(
    env.json("AIRLOCK_PARTNER_OIDC", default={}),
    staff_issuer=OIDC_OP_ISSUER if OIDC_ENABLED else "",
)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# HTTPS, cookies and headers: the web app is an access broker, so be strict.
# Served over HTTPS unless debug is on or AIRLOCK_HTTPS=off (plain HTTP on
# loopback: development, the test client, the benchmark): HTTP is redirected and
# browsers are told to use nothing else for a year (HSTS, subdomains included;
# preloading commits the whole domain, so it waits for AIRLOCK_HSTS_PRELOAD).
AIRLOCK_HTTPS = env.bool("AIRLOCK_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = AIRLOCK_HTTPS
# Load balancers' probes often come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = (
    env.int("AIRLOCK_HSTS_SECONDS", default=365 * 24 * 3600) if AIRLOCK_HTTPS else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("AIRLOCK_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "not preloaded": a choice, see above
# A proxy that terminates TLS says so in X-Forwarded-Proto. Trust it only when it
# always sets that header itself (and strips one a client sent): else a client could
# claim HTTPS.
if env.bool("AIRLOCK_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("AIRLOCK_SESSION_SECONDS", default=8 * 3600)
SESSION_COOKIE_SECURE = env.bool("AIRLOCK_SECURE_COOKIES", default=AIRLOCK_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        # The exchange tables: kombu's default is ./control, in the checkout.
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
else:
    # ETA tasks (revocation at expiry) wait in the worker; Redis redelivers an
    # unacknowledged task after this timeout, which is harmless because every
    # task re-reads its row and exits when nothing is due.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_TIMEOUT = 5
# Slack messages wait in a queue of their own, so that a backlog of them (Slack
# down or rate-limiting, or a burst of changes) never holds up an activation or
# a revocation queued behind it. Workers take from both queues in turn unless
# started with -Q; `-Q celery` and `-Q slack` split them onto workers of their own.
# A routing key of its own for each queue: with AMQP routing (RabbitMQ), a
# key bound to both queues would deliver every message to both.
CELERY_TASK_QUEUES = (Queue("celery", routing_key="celery"), Queue("slack", routing_key="slack"))
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {"integrations.slack.tasks.*": {"queue": "slack"}}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

AIRLOCK_SWEEP_SECONDS = env.float("AIRLOCK_SWEEP_SECONDS", default=15.0)
# How often each worker process writes the task timings it counted (for /metrics).
AIRLOCK_TASK_TIMING_FLUSH_SECONDS = env.float("AIRLOCK_TASK_TIMING_FLUSH_SECONDS", default=10.0)
AIRLOCK_RECONCILE_SECONDS = env.float("AIRLOCK_RECONCILE_SECONDS", default=600.0)
AIRLOCK_WATCH_SECONDS = env.float("AIRLOCK_WATCH_SECONDS", default=60.0)
AIRLOCK_INSIGHTS_ROLLUP_SECONDS = env.float("AIRLOCK_INSIGHTS_ROLLUP_SECONDS", default=900.0)
# How often access reviews are started (by the catalog's schedule), nudged and closed.
AIRLOCK_ACCESS_REVIEWS_SECONDS = env.float("AIRLOCK_ACCESS_REVIEWS_SECONDS", default=900.0)
# How often third parties' contracts are ended, their sponsors reminded, and the
# externals of a sponsor who left suspended.
AIRLOCK_EXTERNALS_SECONDS = env.float("AIRLOCK_EXTERNALS_SECONDS", default=300.0)
# How often the model of usual access (broker/riskmodel) learns from the last 90 days.
AIRLOCK_RISK_MODEL_TRAIN_SECONDS = env.float("AIRLOCK_RISK_MODEL_TRAIN_SECONDS", default=3600.0)
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": task_names.SWEEP, "schedule": AIRLOCK_SWEEP_SECONDS},
    "reconcile": {"task": task_names.RECONCILE, "schedule": AIRLOCK_RECONCILE_SECONDS},
    "watch": {"task": task_names.WATCH, "schedule": AIRLOCK_WATCH_SECONDS},
    "insights": {"task": task_names.ROLL_UP_INSIGHTS, "schedule": AIRLOCK_INSIGHTS_ROLLUP_SECONDS},
    "access_reviews": {
        "task": task_names.TICK_ACCESS_REVIEWS,
        "schedule": AIRLOCK_ACCESS_REVIEWS_SECONDS,
    },
    "externals": {"task": task_names.TICK_EXTERNALS, "schedule": AIRLOCK_EXTERNALS_SECONDS},
    "risk_model": {
        "task": task_names.TRAIN_RISK_MODEL,
        "schedule": AIRLOCK_RISK_MODEL_TRAIN_SECONDS,
    },
}

# --- Airlock ----------------------------------------------------------------
AIRLOCK_CATALOG = env.str("AIRLOCK_CATALOG", default=str(BASE_DIR / "examples" / "access.yaml"))
# An approval or a credential reveal needs an MFA verification this recent.
AIRLOCK_STEP_UP_WINDOW = timedelta(minutes=env.int("AIRLOCK_STEP_UP_MINUTES", default=5))
# The periodic reconciler revokes a credential no grant has explained for this long
# (a worker that died between minting and recording it); 0 only reports.
AIRLOCK_RECONCILE_REVOKE_AFTER = timedelta(
    seconds=env.int("AIRLOCK_RECONCILE_REVOKE_AFTER_SECONDS", default=300)
)
# A grant stuck in "revoking" this long (its task was lost) is retried by the sweeper.
AIRLOCK_REVOKE_RETRY_AFTER = timedelta(seconds=env.int("AIRLOCK_REVOKE_RETRY_SECONDS", default=60))
AIRLOCK_REVOKE_MAX_ATTEMPTS = env.int("AIRLOCK_REVOKE_MAX_ATTEMPTS", default=8)

# --- The providers' sources (their secrets are read where used: VAULT_TOKEN,
# VAULT_ROLE_ID/VAULT_SECRET_ID, AWS keys, each profile's dsn_env, also as *_FILE).
VAULT_ADDR = env.str("VAULT_ADDR", default="")
VAULT_NAMESPACE = env.str("VAULT_NAMESPACE", default="")
VAULT_CACERT = env.str("VAULT_CACERT", default="")  # a private CA's bundle
VAULT_SKIP_VERIFY = env.bool("VAULT_SKIP_VERIFY", default=False)  # never in production
VAULT_APPROLE_MOUNT = env.str("VAULT_APPROLE_MOUNT", default="approle")
AWS_REGION = env.str("AWS_REGION", default="") or env.str("AWS_DEFAULT_REGION", default="us-east-1")
AWS_ENDPOINT_URL = env.str("AWS_ENDPOINT_URL", default="")  # moto in the sandbox and tests
# The console sign-in link of an aws.sts grant; empty: no link. AWS's federation
# cannot sign in a session of another endpoint (the sandbox's moto), so by default
# there is none then.
# The sandbox's moto: AWS's sign-in service cannot log in a session it did not issue.
AIRLOCK_SANDBOX_AWS = env.bool("AIRLOCK_SANDBOX", default=False) and bool(AWS_ENDPOINT_URL)
AWS_FEDERATION_ENDPOINT = env.str(
    "AWS_FEDERATION_ENDPOINT",
    default="" if AIRLOCK_SANDBOX_AWS else "https://signin.aws.amazon.com/federation",
)

# The witness (audit/witness.py): an S3 bucket with Object Lock in compliance mode
# that holds the anchors of the audit chain and its archived segments. Empty: none.
AIRLOCK_WITNESS_BUCKET = env.str("AIRLOCK_WITNESS_BUCKET", default="")
AIRLOCK_WITNESS_ENDPOINT_URL = env.str("AIRLOCK_WITNESS_ENDPOINT_URL", default=AWS_ENDPOINT_URL)
AIRLOCK_WITNESS_RETAIN_DAYS = env.int("AIRLOCK_WITNESS_RETAIN_DAYS", default=2557)  # 7 years
# `archive_audit` moves events older than this to the witness (0: keep them all).
AIRLOCK_AUDIT_RETENTION_DAYS = env.int("AIRLOCK_AUDIT_RETENTION_DAYS", default=0)
# How often beat anchors the chain's head (exports anchor it too).
AIRLOCK_ANCHOR_SECONDS = env.float("AIRLOCK_ANCHOR_SECONDS", default=300.0)
if AIRLOCK_WITNESS_BUCKET:
    CELERY_BEAT_SCHEDULE["anchor"] = {
        "task": audit_task_names.ANCHOR_CHAIN_HEAD,
        "schedule": AIRLOCK_ANCHOR_SECONDS,
    }

OTP_TOTP_ISSUER = "Airlock"
# After a few wrong MFA codes in a row (accounts/models.py FREE_MISSES), each
# further one locks the person's codes for this many seconds, doubling each time.
OTP_TOTP_THROTTLE_FACTOR = env.int("AIRLOCK_MFA_BACKOFF_SECONDS", default=10)
# The Django admin edits who may do what; off unless asked for (accounts/admin_site.py).
AIRLOCK_ADMIN_ENABLED = env.bool("AIRLOCK_ADMIN_ENABLED", default=False)
# Set by `make run` when it runs its throwaway OpenBao; every page then says so.
AIRLOCK_SANDBOX = env.bool("AIRLOCK_SANDBOX", default=False)
# Members of this group see the audit log and export it.
AIRLOCK_AUDITOR_GROUP = env.str("AIRLOCK_AUDITOR_GROUP", default="auditors")
# Sign-in throttling: this many failures within the window lock the username
# (and, separately, the client address at 4x) for the window.
AIRLOCK_LOGIN_MAX_FAILURES = env.int("AIRLOCK_LOGIN_MAX_FAILURES", default=5)
AIRLOCK_LOGIN_LOCKOUT = timedelta(minutes=env.int("AIRLOCK_LOGIN_LOCKOUT_MINUTES", default=15))

# Slack (off unless the token, the secret and the workspaces are set; the first two
# also as *_FILE). SLACK_API_URL points the Web API client elsewhere (the tests'
# local fake). AIRLOCK_BASE_URL makes links in messages.
SLACK_BOT_TOKEN = read_secret("SLACK_BOT_TOKEN", required=False)
SLACK_SIGNING_SECRET = read_secret("SLACK_SIGNING_SECRET", required=False)
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api/")


def _comma_separated(name: str) -> list[str]:
    return [item.strip() for item in env.str(name, default="").split(",") if item.strip()]


# The workspaces (team ids, T...) Airlock serves and, on Enterprise Grid, their orgs
# (E...), comma-separated. Requests from anywhere else are refused; with no
# workspace named, Slack stays off (fail closed) and `manage.py check` says why.
SLACK_TEAM_IDS = _comma_separated("SLACK_TEAM_IDS")
SLACK_ENTERPRISE_IDS = _comma_separated("SLACK_ENTERPRISE_IDS")
# Break-glass use, overdue reviews and anomaly alerts are posted here.
SLACK_SECURITY_CHANNEL = env.str("SLACK_SECURITY_CHANNEL", default="")
SLACK_ENABLED = bool(SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET and SLACK_TEAM_IDS)

# Email (off unless EMAIL_URL is set, e.g. smtp+tls://user:password@smtp.example.com:587;
# `make run` prints mail to the console): approvers of a request are emailed when it
# waits for them, unless they turn it off.
_email_url = env.str("EMAIL_URL", default="")
AIRLOCK_EMAIL_ENABLED = bool(_email_url)
if _email_url:
    vars().update(env.email_url_config(_email_url))
    EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("AIRLOCK_EMAIL_FROM", default="Airlock <airlock@localhost>")
AIRLOCK_BASE_URL = env.str("AIRLOCK_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# A request approved through Slack is reminded about this long before its grant expires.
AIRLOCK_EXPIRY_WARNING = timedelta(minutes=env.int("AIRLOCK_EXPIRY_WARNING_MINUTES", default=10))

# Personal API tokens (the CLI, automation): their longest life, and how many
# calls one token (or one signed-in user) may make.
AIRLOCK_API_TOKEN_MAX_DAYS = env.int("AIRLOCK_API_TOKEN_MAX_DAYS", default=90)
AIRLOCK_API_RATE = env.str("AIRLOCK_API_RATE", default="600/minute")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "broker.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["broker.api.throttling.PerTokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": AIRLOCK_API_RATE},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "broker.api.errors.exception_handler",
    # `format` is the audit export's own parameter, not a renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Airlock API",
    "DESCRIPTION": (
        "Just-in-time access: request, decide, reveal and revoke time-boxed credentials. "
        "Authenticate with a personal API token: `Authorization: Bearer airlock_...`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RequestStatusEnum": "broker.models.AccessRequest.Status",
        "GrantStatusEnum": "broker.models.Grant.Status",
    },
}

# plain: a line of text; json: one JSON object a line with the request id and actor.
AIRLOCK_LOG_FORMAT = env.str("AIRLOCK_LOG_FORMAT", default="plain")
if AIRLOCK_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("AIRLOCK_LOG_FORMAT is plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "airlock.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": AIRLOCK_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("AIRLOCK_LOG_LEVEL", default="INFO")},
    # These client libraries log whole responses at DEBUG, and the responses are
    # the credentials we mint (STS keys, Vault tokens): never below WARNING,
    # whatever AIRLOCK_LOG_LEVEL says. tests/test_no_secret_leaks.py checks it.
    "loggers": {
        name: {"level": "WARNING"}
        for name in ("botocore", "boto3", "urllib3", "hvac", "psycopg", "slack_sdk", "requests")
    },
}
