"""Slipway settings: one file, read from the environment (see README "Settings").

Every variable is documented in README.md; bad values fail at start-up.
"""
from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from devops.engines.local.runtimes import AUTO as RUNTIME_AUTO
from devops.engines.local.runtimes import RUNTIMES
from devops.engines.registry import ENGINES
from devops.env import envbool, envchoice, envduration, envhostport, envint, envstr, envurl
from devops.scm.providers import oauth_apps

BASE_DIR = Path(__file__).resolve().parent.parent

# Where everything Slipway writes lives in the embedded default: the SQLite
# database, workspaces, logs, caches, the built-in registry's storage.
DATA_DIR = Path(envstr("SLIPWAY_DATA_DIR", str(Path.cwd() / ".slipway"))).resolve()
try:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
except OSError as exc:  # a file in the way, no permission: say which variable
    raise ImproperlyConfigured(
        f"SLIPWAY_DATA_DIR={str(DATA_DIR)!r}: cannot make the directory ({exc.strerror})"
    ) from None


def _secret_key() -> str:
    """SLIPWAY_SECRET_KEY, else a random key kept in the data dir.

    Keeping it in the data dir means a laptop install works without any
    configuration and sessions / encrypted credentials survive restarts.
    """
    key = envstr("SLIPWAY_SECRET_KEY")
    if key:
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Credentials and secret values are encrypted with this key (Fernet). It
# defaults to one derived from SECRET_KEY; set it explicitly in production so
# that rotating SECRET_KEY does not make stored credentials unreadable.
ENCRYPTION_KEY_DERIVED = not envstr("SLIPWAY_ENCRYPTION_KEY")  # system check slipway.W021
ENCRYPTION_KEY = envstr("SLIPWAY_ENCRYPTION_KEY") or hashlib.sha256(
    ("slipway-encryption:" + SECRET_KEY).encode()
).hexdigest()

DEBUG = envbool("SLIPWAY_DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in envstr("SLIPWAY_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in envstr("SLIPWAY_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
# The URL Slipway is reached at; webhooks and commit-status links use it.
PUBLIC_URL = envurl("SLIPWAY_PUBLIC_URL", "http://127.0.0.1:8000", ("http", "https")).rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    *oauth_apps(),  # one allauth provider app per SCM provider type (devops/scm/providers.py)
    "devops.apps.DevopsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (admin CSS, htmx, Swagger UI) from the process itself, so the
    # embedded default needs no separate web server; finders mode avoids a
    # collectstatic step.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "devops.urls"
WSGI_APPLICATION = "devops.wsgi.application"
ASGI_APPLICATION = "devops.asgi.application"

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
            ],
        },
    }
]

# Only the two databases Slipway supports; PostgreSQL may use its local socket (no host).
_DB_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")
DATABASE_URL = envurl("DATABASE_URL", "", _DB_SCHEMES, hostless=_DB_SCHEMES) or f"sqlite:///{DATA_DIR / 'slipway.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process, the controller and runners
    # share one SQLite file; "IMMEDIATE" takes the write lock at BEGIN so two
    # writers queue instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envurl("REDIS_URL", "", ("redis", "rediss", "unix"), hostless=("unix",))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
SITE_ID = 1
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_EMAIL_VERIFICATION = "none"
# Who may create an account at /accounts/signup/ (and by a first social login):
# "closed" (default: an admin adds users, `manage.py user add`) or "open".
SLIPWAY_SIGNUP = envchoice("SLIPWAY_SIGNUP", "closed", ("closed", "open"))
ACCOUNT_ADAPTER = "devops.accounts.AccountAdapter"
# Provider tokens are kept only encrypted, on SourceCodeCredential (devops.accounts.capture_token):
# allauth stores no plaintext SocialToken row.
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_ADAPTER = "devops.accounts.SocialAccountAdapter"
# Commit statuses: attempts per state before giving up (transient errors back off 2 s doubling to 5 min).
SLIPWAY_COMMIT_STATUS_ATTEMPTS = envint("SLIPWAY_COMMIT_STATUS_ATTEMPTS", 8)
# The host of a GitHub Enterprise / GitLab / Bitbucket Server app (typed by a project owner) may be
# loopback, link-local or private only when this is on (devops.scm.http.host_problem).
SLIPWAY_SCM_ALLOW_PRIVATE = envbool("SLIPWAY_SCM_ALLOW_PRIVATE", False)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when it is missing
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three defaults; JSON through Slipway's parser (too deep a body is a 400, not a 500)
    "DEFAULT_PARSER_CLASSES": [
        "devops.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Slipway API",
    "DESCRIPTION": "Projects, pipelines and executions of Slipway, rendered in CRD shape.",
    "VERSION": "v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar package: /api/docs/ works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Slipway's own settings (README "Settings") --------------------------------
# Engine that runs executions: a name of the ENGINES table (devops/engines/registry.py).
SLIPWAY_ENGINE = envchoice("SLIPWAY_ENGINE", "local", ENGINES.names())
# Test-only step runtimes (dummy) may be chosen; tests/conftest.py sets it, slipway.W025 flags it.
SLIPWAY_TEST_RUNTIMES = envbool("SLIPWAY_TEST_RUNTIMES", False)
_runtime = envstr("SLIPWAY_STEP_RUNTIME").strip()
if not SLIPWAY_TEST_RUNTIMES and _runtime in set(RUNTIMES.names(test=True)) - set(RUNTIMES.names()):
    raise ImproperlyConfigured(
        f"SLIPWAY_STEP_RUNTIME={_runtime!r} is for tests only (nothing really runs); "
        "set SLIPWAY_TEST_RUNTIMES=1 to allow it"
    )
# How the local engine runs steps: auto or a name of the RUNTIMES table
# (devops/engines/local/runtimes/__init__.py): container | sandbox | host.
SLIPWAY_STEP_RUNTIME = envchoice(
    "SLIPWAY_STEP_RUNTIME", "auto", (RUNTIME_AUTO, *RUNTIMES.names(test=SLIPWAY_TEST_RUNTIMES))
)
# Jenkins engine (README "Jenkins engine"): Jenkins' URL, a user and that user's API token
# (a secret: never logged). slipway.E030-E032 fail `manage.py check` without them.
SLIPWAY_JENKINS_URL = envurl("SLIPWAY_JENKINS_URL", "", ("http", "https"))
SLIPWAY_JENKINS_USER = envstr("SLIPWAY_JENKINS_USER", "")
SLIPWAY_JENKINS_TOKEN = envstr("SLIPWAY_JENKINS_TOKEN", "")
# Where step logs go: file:///path (default under the data dir) or s3://...
SLIPWAY_LOG_STORE = envstr("SLIPWAY_LOG_STORE", f"file://{DATA_DIR / 'logs'}")
# Where workspaces live (one directory per execution).
SLIPWAY_WORKSPACE_DIR = Path(envstr("SLIPWAY_WORKSPACE_DIR", str(DATA_DIR / "workspaces")))
# Run the controller inside the web process (the embedded default's `up`
# starts a separate runcontroller process instead; this is for one-process setups).
SLIPWAY_EMBEDDED_CONTROLLER = envbool("SLIPWAY_EMBEDDED_CONTROLLER", False)
# This controller's node name: it owns the runners it starts (README, "Several controllers").
SLIPWAY_NODE_NAME = envstr("SLIPWAY_NODE_NAME", "") or socket.gethostname()
# Seconds without a heartbeat after which a node's runs are adopted by another node.
SLIPWAY_NODE_TIMEOUT = envint("SLIPWAY_NODE_TIMEOUT", 60, minimum=1)
# Tests: a missing service (PostgreSQL, Redis, S3, buildah, registry) fails
# instead of skipping. CI sets it.
SLIPWAY_REQUIRE_SERVICES = envbool("SLIPWAY_REQUIRE_SERVICES", False)
# The built-in registry (docker-registry) listens here; empty = a free
# loopback port chosen once and kept in DATA_DIR/registry/state.json.
SLIPWAY_REGISTRY_ADDR = envhostport("SLIPWAY_REGISTRY_ADDR")
# The kubeconfig of the cluster the jenkins engine's data plane lives on (`dataplane apply`,
# engine deploy()); empty = the in-cluster service account when Slipway runs on the cluster.
SLIPWAY_KUBECONFIG = envstr("SLIPWAY_KUBECONFIG", "")
# Deploy steps may use a project kubeconfig whose server is this machine (loopback, link-local,
# its own addresses). Read again by each step (devops.dataplane.client); parsed here so a typo
# stops start-up.
SLIPWAY_DEPLOY_ALLOW_LOCAL = envbool("SLIPWAY_DEPLOY_ALLOW_LOCAL", False)
# Start the built-in registry with the controller when docker-registry is installed.
SLIPWAY_REGISTRY = envbool("SLIPWAY_REGISTRY", True)
# Run directories and workspaces of finished executions are deleted this long
# after the run ended (logs stay in the log store): 30m, 24h, 7d; a number = hours.
SLIPWAY_RUN_RETENTION = envduration("SLIPWAY_RUN_RETENTION", "24h")
# Webhook and image-push bodies over this many bytes are refused with 413 before
# they are read (GitHub caps its payloads at 25 MB).
SLIPWAY_WEBHOOK_MAX_BODY = envint("SLIPWAY_WEBHOOK_MAX_BODY", 25 * 1024 * 1024, minimum=1024)
# True inside the test suite: the system checks for test-only setups
# (the dummy and host runtimes, slipway.W022/W024) stay quiet there.
SLIPWAY_TESTING = "pytest" in sys.modules

# --- Notifications (README *Notifications*): e-mail through Django's mail backend.
# EMAIL_BACKEND: Django's dotted path; the SMTP backend by default (the tests use locmem).
EMAIL_BACKEND = envstr("SLIPWAY_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = envstr("SLIPWAY_EMAIL_HOST", "localhost")
EMAIL_PORT = envint("SLIPWAY_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = envstr("SLIPWAY_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = envstr("SLIPWAY_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = envbool("SLIPWAY_EMAIL_STARTTLS", False)  # STARTTLS on a plain port (587)
EMAIL_USE_SSL = envbool("SLIPWAY_EMAIL_SSL", False)       # TLS from the first byte (465)
EMAIL_TIMEOUT = envint("SLIPWAY_EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = envstr("SLIPWAY_EMAIL_FROM", "slipway@localhost")
# Webhook and Slack notifiers may reach loopback, link-local and private
# addresses only when this is on (a trusted network; the tests' receivers).
SLIPWAY_NOTIFY_ALLOW_PRIVATE = envbool("SLIPWAY_NOTIFY_ALLOW_PRIVATE", False)
# A notification is tried at most this many times (transient failures), backing
# off 30 s, 1 min, 2 min, ... up to an hour between attempts.
SLIPWAY_NOTIFY_MAX_ATTEMPTS = envint("SLIPWAY_NOTIFY_MAX_ATTEMPTS", 6, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": envchoice("SLIPWAY_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True),
    },
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
