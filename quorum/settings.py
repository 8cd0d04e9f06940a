"""Quorum's one settings file: every knob comes from the environment, with a working default.

With no environment at all, Quorum runs embedded: SQLite under var/, an in-memory channel
layer and a Celery broker on the filesystem under var/. Set DATABASE_URL and REDIS_URL for
PostgreSQL and Redis.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QUORUM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def envbool(name, default):
    value = os.environ.get(name, default)
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def envint(name, default):
    return int(os.environ.get(name, default))


def envlist(name, default):
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _secret_key():
    """Use SECRET_KEY, or a key generated once into var/ so sessions survive restarts."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "quorum",
    "annotation",
    "judging",
    "calibration",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "quorum.staticfiles.StaticFilesMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "quorum.urls"
ASGI_APPLICATION = "quorum.asgi.application"

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
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'quorum.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, management commands) share one file: wait for the
    # write lock instead of failing, and take it at BEGIN so reads never need upgrading.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # A file, not memory, so the suite's worker and server subprocesses see the test data;
    # one per test process, so that two suites can run side by side.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs in a thread of its own, so a connection is only ever
    # reused through a pool; without one each request pays for a new PostgreSQL backend.
    DB_POOL_SIZE = envint("DB_POOL_SIZE", 10)
    if DB_POOL_SIZE and not DATABASES["default"]["CONN_MAX_AGE"]:
        DATABASES["default"]["OPTIONS"] = {
            "pool": {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": 30}
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "quorum.auth.UsernameOrEmailBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:studies"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one account from
# one address, that account is locked for that address only, for AXES_COOLOFF_MINUTES (0: until
# an admin unlocks it); others at that address, and the account elsewhere, log in as usual.
# The address is REMOTE_ADDR: uvicorn fills it from X-Forwarded-For only for the proxies named
# in its FORWARDED_ALLOW_IPS (see the README), so axes itself reads no forwarding header.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
_cooloff_minutes = envint("AXES_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes) if _cooloff_minutes else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# An email address counts as the account it logs in to, so its spellings share one count.
AXES_USERNAME_CALLABLE = "quorum.auth.lockout_username"
AXES_RESET_ON_SUCCESS = True
# A try while locked out starts the cool-off again, so the page's "try again in N minutes" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Failed attempts are kept (they are the lockout); successful logins and their addresses are not.
AXES_DISABLE_ACCESS_LOG = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Sessions are read on every request: from the cache (Redis in production), falling back to
# the database, which keeps them across cache restarts.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Production safety: with DEBUG off, cookies only travel over HTTPS. Redirects and HSTS depend
# on the proxy in front of Quorum, so they are the deployment's choice.
# SECURE_COOKIES=0 only for plain-HTTP setups with DEBUG off: an intranet, a benchmark.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("SECURE_PROXY_SSL_HEADER", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): pages run only our own static scripts and style
# sheets, no inline code or CSS (the report's SVG plots carry presentation attributes, not
# styles). data: images are the report's confusion matrices, PNG inside the SVG. 'self' in
# connect-src also allows the same host's ws:/wss:, for the study page's live counters.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "quorum.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "quorum.api_errors.ErrorDocumentingAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "quorum.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quorum API",
    "DESCRIPTION": "Studies, items and labels of the Quorum annotation platform.",
    "VERSION": "0.1.0",
    # The API is documented as JSON; the form parsers serve the browsable API's forms, which
    # cannot send a null or an empty list.
    "PARSER_WHITELIST": ["quorum.parsers.DepthLimitedJSONParser"],
}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
    CACHES = {"default": {"BACKEND": "quorum.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Embedded broker: a real `celery worker` process polls a folder under var/.
    CELERY_QUEUE_DIR = VAR_DIR / "celery"
    CELERY_QUEUE_DIR.mkdir(exist_ok=True)
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # A file cache: web and worker processes share the reports the worker builds.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The environment variables a judge may read its API key from (a judge's `api_key_env`): a
# judge's key is sent to its host, so no other variable of the server's may be named.
JUDGE_KEY_ENV_NAMES = envlist("JUDGE_KEY_ENV_NAMES", "OPENAI_API_KEY")

# Studies with more current labels than this get their report built by a Celery worker.
REPORT_IN_BACKGROUND_ABOVE = envint("REPORT_IN_BACKGROUND_ABOVE", 50_000)

# Where files uploaded in the browser wait for the Celery worker that imports them: web and
# worker processes must both reach it (one host, or a shared volume).
UPLOAD_DIR = Path(os.environ.get("QUORUM_UPLOAD_DIR", VAR_DIR / "uploads"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # One line per judge request is noise at INFO; failures are kept on the verdicts.
    # django-axes announces itself at INFO on every start, management commands included; its
    # failed logins and lockouts are warnings and still show.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},
    },
}
