"""Settings shared by every environment. Each value comes from the environment, with one default.

Defaults suit a developer's machine; ``production.py`` tightens them. ``DATABASE_URL`` and
``REDIS_URL`` default to the embedded servers that ``make services`` starts (their URLs are
written to ``var/services.env``).
"""
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(VAR_DIR / "services.env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "catalog",
    "recommender",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Hardening (stylesite/security.py, stylesite/exceptions.py)
    "stylesite.security.RejectNulMiddleware",
    "stylesite.security.ContentSecurityPolicyMiddleware",
    "stylesite.exceptions.DomainErrorMiddleware",
]

ROOT_URLCONF = "stylesite.urls"
WSGI_APPLICATION = "stylesite.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default="postgresql://postgres@/stylesite?host=" + str(VAR_DIR / "pg"))}
# Web threads per gunicorn worker (stylesite/gunicorn_conf.py); each thread needs one connection.
STYLESITE_WEB_THREADS = env.int("STYLESITE_WEB_THREADS", default=4)
# Each process borrows connections from its own pool of at most STYLESITE_DB_POOL_SIZE, so
# Postgres sees at most (web workers x pool size) + (worker processes) connections however many
# requests arrive. 0 turns the pool off (one connection per request, e.g. behind PgBouncer).
STYLESITE_DB_POOL_SIZE = env.int("STYLESITE_DB_POOL_SIZE", default=STYLESITE_WEB_THREADS)
# Seconds a request waits for a pooled connection before it answers 503 with Retry-After (overload).
STYLESITE_DB_POOL_TIMEOUT = env.float("STYLESITE_DB_POOL_TIMEOUT", default=10)
DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if STYLESITE_DB_POOL_SIZE:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": STYLESITE_DB_POOL_SIZE, "max_idle": 60, "timeout": STYLESITE_DB_POOL_TIMEOUT,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The lockout backend goes first: it refuses attempts for a locked username or address (stylesite/limits.py).
AUTHENTICATION_BACKENDS = ["stylesite.limits.LoginLockoutBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:item-list"
LOGOUT_REDIRECT_URL = "catalog:item-list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STYLESITE_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))  # collectstatic's target
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files straight from the source folders until `collectstatic` (production) runs.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("STYLESITE_MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Uploads up to this size are kept in memory; the photo-search cap is separate (below).
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Catalogue and pipeline -------------------------------------------------------------
# New collections' backbone. The int8 copy of EfficientNet-Lite0 embeds 2.5x faster than float32 here
# (bench/ingest.py), with the same retrieval precision on clothing-small (bench/similarity.py --model).
STYLESITE_EMBEDDING_MODEL = env("STYLESITE_EMBEDDING_MODEL", default="efficientnet-lite0-int8")
STYLESITE_BACKGROUND_MODEL = env("STYLESITE_BACKGROUND_MODEL", default="isnet-general-use")
# Side of the square the background model sees (ISNet's own is 1024). On 100 validation photos no smaller
# size kept the masks of 1024² (mean IoU 768: 0.932, 640: 0.925, 512: 0.909; a few photos' masks differ
# entirely), so speed comes from int8 instead: bench/background_size.py.
STYLESITE_BACKGROUND_SIZE = env.int("STYLESITE_BACKGROUND_SIZE", default=1024)
# "int8": a statically quantised copy of ISNet (ml.background.quantized_model) with 7-bit weights, about
# 3x faster with VNNI and 1.7x on an AVX2-only CPU, with masks matching fp32's (mean IoU 0.998, min 0.983
# at 1024² over 30 validation photos on the AVX2-only CPU); "fp32": the model as published.
STYLESITE_BACKGROUND_PRECISION = env("STYLESITE_BACKGROUND_PRECISION", default="int8")
# ONNX Runtime threads per background inference in the pipeline, which runs two inferences at once
# (one per decode thread); 0 = one per core. Photo search's single cut-out uses every core.
STYLESITE_BACKGROUND_THREADS = env.int("STYLESITE_BACKGROUND_THREADS", default=1)
STYLESITE_MAX_PIXELS = env.int("STYLESITE_MAX_PIXELS", default=40_000_000)
STYLESITE_THUMBNAIL_SIZE = env.int("STYLESITE_THUMBNAIL_SIZE", default=320)
STYLESITE_MODEL_CACHE = Path(env("STYLESITE_MODEL_CACHE", default=str(VAR_DIR / "models")))
# Models fitted on the catalogue (classifier heads, preference models), versioned files.
STYLESITE_ARTIFACT_DIR = Path(env("STYLESITE_ARTIFACT_DIR", default=str(VAR_DIR / "artifacts")))
# Where rembg looks for its ONNX files ($U2NET_HOME/models/<name>/<name>.onnx).
U2NET_HOME = Path(env("U2NET_HOME", default=str(VAR_DIR / "u2net")))
# ml/ has no Django settings: rembg and the embedder cache read these from the environment.
os.environ.setdefault("U2NET_HOME", str(U2NET_HOME))
os.environ.setdefault("STYLESITE_MODEL_CACHE", str(STYLESITE_MODEL_CACHE))
STYLESITE_SHARED_DIR = Path(env("STYLESITE_SHARED_DIR", default=str(BASE_DIR.parent / "shared")))
STYLESITE_UPLOAD_MAX_BYTES = env.int("STYLESITE_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
# Images stuck in pending/processing longer than this are re-queued by the periodic sweep.
STYLESITE_STUCK_AFTER_SECONDS = env.int("STYLESITE_STUCK_AFTER_SECONDS", default=600)
# A task renews its claims after every stored batch (seconds apart); claims not renewed for this long
# belong to a task whose worker died, and the next task takes them over. Without it, images held by a
# killed child waited for its redelivery at the back of the queue, and those of a killed worker for
# the broker's visibility timeout or the sweep (bench/chaos.py).
STYLESITE_CLAIM_LEASE_SECONDS = env.int("STYLESITE_CLAIM_LEASE_SECONDS", default=30)
STYLESITE_HNSW_EF_SEARCH = env.int("STYLESITE_HNSW_EF_SEARCH", default=80)
# Every connection starts with the search settings nearest-neighbour queries use (libpq's ``options``), so
# a look-alike query needs no transaction and no set_config round trip of its own: those were 3 of a
# similar-items request's 8 statements (bench/load.py). ``Embedding.objects.nearest`` still sets them for
# its transaction when a caller wants other values.
HNSW_SESSION_OPTIONS = "-c hnsw.ef_search={ef} -c hnsw.iterative_scan=relaxed_order"
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = " ".join(filter(None, [_db_options.get("options", ""),
                                                HNSW_SESSION_OPTIONS.format(ef=STYLESITE_HNSW_EF_SEARCH)]))
# A pipeline task takes its own image and up to this many pending ones in all (a batching worker).
STYLESITE_PIPELINE_BATCH = env.int("STYLESITE_PIPELINE_BATCH", default=32)
# A pass-2 task cuts out its own image and up to this many unrefined ones in all, two at a time.
STYLESITE_REFINE_BATCH = env.int("STYLESITE_REFINE_BATCH", default=4)
# A collection's first ingest, once drained with at least this many ready images, starts its
# clustering and classifier jobs (so the Styles page has a map without a command).
STYLESITE_STYLES_AUTO_MIN_IMAGES = env.int("STYLESITE_STYLES_AUTO_MIN_IMAGES", default=50)
# The feed re-checks a collection's cached vector matrix against the database at most this often.
STYLESITE_PREFERENCE_RECHECK_SECONDS = env.float("STYLESITE_PREFERENCE_RECHECK_SECONDS", default=5.0)
# Fitted models (classifier heads, preference models) one process keeps loaded; the oldest is evicted.
STYLESITE_ARTIFACT_CACHE_SIZE = env.int("STYLESITE_ARTIFACT_CACHE_SIZE", default=8)
# Styles: curation flags items whose label the classifier (or the k nearest neighbours' majority)
# contradicts with at least this confidence; near-duplicates are pairs at or above this cosine.
STYLESITE_CURATION_NEIGHBOURS = env.int("STYLESITE_CURATION_NEIGHBOURS", default=10)
STYLESITE_MISLABEL_CONFIDENCE = env.float("STYLESITE_MISLABEL_CONFIDENCE", default=0.8)
STYLESITE_DUPLICATE_SIMILARITY = env.float("STYLESITE_DUPLICATE_SIMILARITY", default=0.97)

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes anonymous API calls 401, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "stylesite.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "stylesite.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "photo_search": env("STYLESITE_PHOTO_SEARCH_RATE", default="30/min"),
        "photo_search_ip": env("STYLESITE_PHOTO_SEARCH_IP_RATE", default="60/min"),
    },
    # Proxies in front of the site whose X-Forwarded-For entries are trusted (0: use REMOTE_ADDR).
    "NUM_PROXIES": env.int("STYLESITE_NUM_PROXIES", default=0),
    "DEFAULT_PARSER_CLASSES": [
        "stylesite.parsers.SafeJSONParser",
        "stylesite.parsers.SafeFormParser",
        "stylesite.parsers.SafeMultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stylesite API",
    "DESCRIPTION": "Visual style catalogue: items, similarity search, votes and personal predictions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package, not a CDN (the site may run offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets used by more than one serializer keep one readable name each.
    "ENUM_NAME_OVERRIDES": {
        "ItemGenderEnum": "catalog.models.Item.Gender", "ItemSplitEnum": "catalog.models.Item.Split",
        "ItemImageStatusEnum": "catalog.models.ItemImage.Status",
        "JobStatusEnum": "catalog.models.ImportJob.Status",  # the same set as style jobs
    },
}

# --- Hardening (stylesite/security.py, parsers.py, limits.py) -----------------------------
# JSON request bodies nested deeper than this are refused with 400.
STYLESITE_JSON_MAX_DEPTH = env.int("STYLESITE_JSON_MAX_DEPTH", default=32)
# Photo search decodes at most this many pixels (a 5 KB 1-bit PNG can declare 40 MP), and runs at most
# this many searches at once across all web processes (more answer 503 with Retry-After).
STYLESITE_SEARCH_MAX_PIXELS = env.int("STYLESITE_SEARCH_MAX_PIXELS", default=16_000_000)
STYLESITE_SEARCH_MAX_CONCURRENT = env.int("STYLESITE_SEARCH_MAX_CONCURRENT", default=4)
STYLESITE_SEARCH_LEASE_SECONDS = env.int("STYLESITE_SEARCH_LEASE_SECONDS", default=60)
# Room for multipart headers and small form fields beside the photo-search image.
STYLESITE_UPLOAD_FORM_OVERHEAD_BYTES = env.int("STYLESITE_UPLOAD_FORM_OVERHEAD_BYTES", default=64 * 1024)
# Failed logins (page or token API) before a username / a client address is locked, and for how long.
STYLESITE_LOGIN_FAILURES_PER_USER = env.int("STYLESITE_LOGIN_FAILURES_PER_USER", default=10)
STYLESITE_LOGIN_FAILURES_PER_IP = env.int("STYLESITE_LOGIN_FAILURES_PER_IP", default=50)
STYLESITE_LOGIN_LOCKOUT_SECONDS = env.int("STYLESITE_LOGIN_LOCKOUT_SECONDS", default=15 * 60)
# Django serves MEDIA_URL itself only when this is true (production: a web server or object store does).
STYLESITE_SERVE_MEDIA = env.bool("STYLESITE_SERVE_MEDIA", default=True)
# No inline scripts anywhere (page scripts are static files); inline style attributes remain.
STYLESITE_CONTENT_SECURITY_POLICY = env(
    "STYLESITE_CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

# --- Celery ----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6390/0")
CELERY_BROKER_URL = REDIS_URL
# One cache shared by every web and worker process (throttle counters, debounce flags).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": env("STYLESITE_CACHE_PREFIX", default="stylesite")}}
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The hard limit stays well under the broker's visibility timeout, so a task is never
# redelivered while its first run is still alive.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
# A worker listening to several queues (-Q pass1,pass2) always drains the first listed first.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60, "queue_order_strategy": "priority"}
CELERY_RESULT_EXPIRES = 24 * 60 * 60
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="stylesite")
# Pass 2 of the image pipeline (cut-out and re-embedding) runs on its own, lower-priority queue.
STYLESITE_REFINE_QUEUE = env("STYLESITE_REFINE_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}-refine")
# A new pool child must report itself up within this many seconds or it is killed and replaced. It loads
# the models first (``stylesite.celery.warm_up``: ~10 s on a busy 2-core machine), and Celery's default
# of 4 s then killed every replacement child: after one lost child the worker never ran a task again.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=120.0)
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=0) or None
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-images": {"task": "recommender.pipeline.tasks.sweep_stuck_images_task", "schedule": 300.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- Bulk import jobs (POST /api/imports/): caps on the zip of images -----------------
STYLESITE_IMPORT_MAX_FILES = env.int("STYLESITE_IMPORT_MAX_FILES", default=10_000)
STYLESITE_IMPORT_MAX_BYTES = env.int("STYLESITE_IMPORT_MAX_BYTES", default=2 * 1024 ** 3)  # uncompressed
