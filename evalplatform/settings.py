"""One settings module, driven by environment variables.

Every value has a default that makes the embedded quickstart work (SQLite, Celery on
kombu's filesystem transport); production sets DATABASE_URL, CELERY_BROKER_URL,
SECRET_KEY, DEBUG=0 and ALLOWED_HOSTS (see README.md).
"""

import os
from pathlib import Path

import dj_database_url
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from evalplatform.env import env_bool, env_choice, env_int, env_key_routes, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVALPLATFORM_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-dev-key-only-for-the-embedded-quickstart"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "annotation",
    "inference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "evalplatform.upload_limits.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "evalplatform.urls"
WSGI_APPLICATION = "evalplatform.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        # A persistent connection the database dropped is replaced before a request uses it,
        # instead of failing that request.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded quickstart runs a web server and a worker on one file: wait for locks.
    # A file, not shared-cache memory, so that tests with concurrent connections wait on
    # locks the way the quickstart's web server and worker do.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Fine-tuning checkpoints; GPU workers serving a fine-tuned model must see the same path.
TRAINING_DIR = Path(env_str("TRAINING_DIR", str(VAR_DIR / "training")))
# Uploads. A file above FILE_UPLOAD_MAX_MEMORY_SIZE is streamed to a temporary file instead of
# memory; everything else in a request (a JSON body, form fields) may take at most
# DATA_UPLOAD_MAX_MEMORY_SIZE. An import file may be at most IMPORT_MAX_BYTES, and no request
# body may be much larger: evalplatform.upload_limits refuses it with 413 from its
# Content-Length, before anything reads it. The API imports a file up to
# IMPORT_API_SYNC_MAX_BYTES while the client waits; a larger one becomes a background job.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 100 * 1024 * 1024, minimum=1)
IMPORT_API_SYNC_MAX_BYTES = env_int("IMPORT_API_SYNC_MAX_BYTES", 5 * 1024 * 1024, minimum=0)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "rounds"
LOGOUT_REDIRECT_URL = "login"

# HTTPS. With DEBUG off the site is served over HTTPS only: plain HTTP is redirected, browsers
# are told to keep to HTTPS (HSTS), cookies are sent over HTTPS only. Behind a TLS-terminating
# proxy, SECURE_PROXY_SSL_HEADER names the header by which it says a request came over HTTPS
# (e.g. X-Forwarded-Proto); the proxy must set it itself, never pass a client's on. PLAIN_HTTP=1
# turns all of it off, for trying the platform out (`check --deploy` then warns, rightly).
PLAIN_HTTP = env_bool("PLAIN_HTTP", False)
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not PLAIN_HTTP)
    # The container's own health check asks over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int(
        "SECURE_HSTS_SECONDS", 0 if PLAIN_HTTP else 365 * 24 * 3600, minimum=0
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Off by default: with the flag in the header anyone may submit the domain to the browsers'
    # preload list, which is hard to leave; that is the domain owner's decision to take.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not PLAIN_HTTP)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not PLAIN_HTTP)
proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "").strip()
if proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + proxy_ssl_header.upper().replace("-", "_"), "https")

# Content-Security-Policy on every response (django-csp): scripts, styles, images and requests
# from this site only, so that a model's answer or a prompt that slipped past escaping can run
# nothing. No page has inline scripts, styles or `style=`/`on*=` attributes: keep it so (static/
# files instead), tests/browser/test_csp.py opens the pages and fails on any violation.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        # Swagger UI's icons are data: URLs in its stylesheet.
        "img-src": [csp.SELF, "data:"],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# The default cache is per process (LocMem): short-lived values each web process may keep to
# itself. "shared" holds what all web processes must agree on, the crowd pages' rate limits: set
# CACHE_URL (redis://HOST:PORT/DB, a db apart from the broker's) when gunicorn runs several
# processes or machines; without it each process counts alone (the embedded quickstart).
CACHE_URL = env_str("CACHE_URL", "").strip()
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: only redis:// URLs are supported.")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 20000},
    },
    "shared": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            # A cache that is away must cost a request milliseconds, not seconds.
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
        if CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "shared",
            "OPTIONS": {"MAX_ENTRIES": 100000},
        }
    ),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "evalplatform.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "evalplatform.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "annotation.api.common.BoundedLimitOffsetPagination",
    # JSON bodies only (the upload endpoints name their own parsers): in a form an empty field
    # reads as "not given" and a body that is not an object as an empty one, unchecked.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "evalplatform API",
    "DESCRIPTION": "Prompt sets, responses, models, comparison rounds and annotations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own (`ProjectRequest`...), so that the schema
    # says what input is accepted (a required name may not be blank) apart from the output.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the installed sidecar package, not a CDN: crowd machines may be offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `kind` field; each choice set gets a name of its own.
    "ENUM_NAME_OVERRIDES": {"RoundKindEnum": "annotation.models.Round.Kind"},
}

# Celery: the embedded default is kombu's filesystem transport, which needs no server.
# "localhost" names no server: kombu's filesystem transport only wants a host to print.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_FILESYSTEM_DIR = Path(env_str("CELERY_FILESYSTEM_DIR", str(VAR_DIR / "celery")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_DIR / "queue"),
        "processed_folder": str(CELERY_FILESYSTEM_DIR / "processed"),
        "control_folder": str(CELERY_FILESYSTEM_DIR / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # With late acknowledgement Redis re-delivers a task still running after this long: it must
    # outlast the longest generation or training task (12 hours by default).
    # A broker that is down makes a launch fail in about two seconds (one retry), not hang.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60),
        "socket_connect_timeout": env_int("CELERY_BROKER_CONNECT_TIMEOUT", 1, minimum=1),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECT_TIMEOUT", 1, minimum=1)
# A worker outlives any broker outage: it reconnects for as long as it takes (by default it
# exits after 100 attempts, ~46 min), also when started while the broker is down, and the tasks
# it is running go on meanwhile (a judge run keeps its paid calls; the run's lease keeps a
# second delivery from repeating them).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues scale independently: `api` (judge, API models), `gpu` (vLLM, chosen per task when
# a run is launched), `train` (fine-tuning); everything else runs on `default`.
# A dialogue's answer goes to its model's queue, chosen when it is sent (inference.dialogue).
CELERY_TASK_ROUTES = {
    "inference.tasks.judge_round": {"queue": "api"},
    "inference.training.tasks.train_model": {"queue": "train"},
    # It trains each candidate in turn, where the training runs do.
    "inference.experiments.tasks.run_experiment": {"queue": "train"},
    "inference.tasks.sweep_runs": {"queue": "default"},
}
CELERY_TASK_ALWAYS_EAGER = False
# Runs recover by themselves: a worker that has not written its heartbeat for RUN_STALE_SECONDS
# is taken to be dead and its run is taken over; `celery beat` sends the sweeper every
# RUN_SWEEP_SECONDS, which re-queues such runs and those queued for RUN_REQUEUE_AFTER_SECONDS
# whose task message is gone from the broker.
RUN_STALE_SECONDS = env_int("RUN_STALE_SECONDS", 300, minimum=1)
RUN_SWEEP_SECONDS = env_int("RUN_SWEEP_SECONDS", 60, minimum=1)
RUN_REQUEUE_AFTER_SECONDS = env_int("RUN_REQUEUE_AFTER_SECONDS", 120, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "sweep-runs": {
        "task": "inference.tasks.sweep_runs",
        "schedule": float(RUN_SWEEP_SECONDS),
        # Sweeps piled up while no worker ran are dropped: the next one does their work.
        "options": {"expires": float(RUN_SWEEP_SECONDS)},
    }
}

# Crowd assignment defaults (a round can override each).
CROWD_LEASE_SECONDS = env_int("CROWD_LEASE_SECONDS", 30 * 60, minimum=10)
# How stale the "N of M" total after an answer may be (M counts the round's items).
CROWD_PROGRESS_CACHE_SECONDS = env_int("CROWD_PROGRESS_CACHE_SECONDS", 10, minimum=0)
# On PostgreSQL an answer and the next item are one database call (annotation 0013); off, every
# answer takes the general path (the same pages and records, about ten times the work).
CROWD_FAST_PATH = env_bool("CROWD_FAST_PATH", True)
# Rate limits on the crowd pages, counted in fixed windows in the "shared" cache (see CACHES); a
# limit of 0 is off, and so are all of them with CROWD_RATE_LIMITS=0. Session starts per client
# address (a lab behind one NAT may have a few dozen workers) and per round (a paid study
# launches hundreds in its first minute); answers per client address. When the cache cannot be
# reached, requests go through. The client address is REMOTE_ADDR, or with CLIENT_IP_HEADER
# (e.g. X-Forwarded-For) the last address in that header, the one the trusted proxy appended.
CROWD_RATE_LIMITS = env_bool("CROWD_RATE_LIMITS", True)
CROWD_STARTS_PER_IP_PER_HOUR = env_int("CROWD_STARTS_PER_IP_PER_HOUR", 30, minimum=0)
CROWD_STARTS_PER_ROUND_PER_MINUTE = env_int("CROWD_STARTS_PER_ROUND_PER_MINUTE", 600, minimum=0)
CROWD_ANSWERS_PER_IP_PER_MINUTE = env_int("CROWD_ANSWERS_PER_IP_PER_MINUTE", 300, minimum=0)
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER", "").strip()
# A round of at most this many texts (prompts and responses) has its Markdown rendered when
# it is made (about 1 ms a text); a larger one renders each text when first shown, or all of
# them with `manage.py render_texts ROUND_ID`.
ROUND_RENDER_MAX_TEXTS = env_int("ROUND_RENDER_MAX_TEXTS", 5000, minimum=0)
# The only environment variables a model or judge config may name as its API key, and the base
# URLs each may be sent to: a researcher can then neither read another secret of the worker
# (DATABASE_URL...) nor send the operator's key to a server of their own.
API_KEYS = env_key_routes("API_KEYS", "OPENAI_API_KEY=https://api.openai.com/")
# A model needs this many verdicts to be ranked on a leaderboard (it is listed either way).
LEADERBOARD_MIN_VERDICTS = env_int("LEADERBOARD_MIN_VERDICTS", 30, minimum=0)
# A round's report is built once per state of its annotations; up to this many annotations in
# the request that first needs it, beyond on a Celery worker while the page shows progress.
REPORT_INLINE_MAX_ANNOTATIONS = env_int("REPORT_INLINE_MAX_ANNOTATIONS", 5_000, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    },
    # One line per HTTP request to a model endpoint is noise in worker logs.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
