"""Market7 settings, read from the environment.

Every variable is documented in README.md ("Settings"). Unset means the embedded default:
SQLite in ``var/market7.sqlite3`` and an embedded real Redis server (see
``market7/embedded_redis.py``), so a fresh machine runs everything with no service installed.
Set ``DATABASE_URL`` / ``REDIS_URL`` and the same code runs on Postgres and a real Redis.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from market7 import embedded_redis, secretbox, serving
from market7.channel_layers import CHANNEL_LAYER_KINDS, channel_layer_config
from market7.env import env_bool, env_choice, env_db_url, env_int, env_list, env_redis_url, env_str, env_timezone
from market7.health import READY_CHECKS
from market7.logs import logging_config
from market7.timeframes import TIMEFRAME_MS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MARKET7_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Prometheus multiprocess mode (market7/metrics.py, docs/monitoring/): every process writes its
# counters to files here and /metrics sums them. prometheus_client reads the variable when it is
# first imported, which happens after the settings (django_prometheus is an installed app).
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR") or VAR_DIR / "prometheus")
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)

# Off unless asked for: with DEBUG on, an error or a 404 shows Django's technical page (settings,
# the URL list). `DEBUG=1 make run` for development.
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """``SECRET_KEY`` from the environment; unset: a random key generated once into
    ``var/secret_key`` (mode 600) and reused, so sessions survive restarts of the embedded setup.
    Several hosts sharing one database must set the same ``SECRET_KEY``."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    try:  # O_EXCL: web, worker and beat starting together agree on the first key written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty; delete it or set SECRET_KEY")
    return key


SECRET_KEY = _secret_key()
# Fernet keys encrypting exchange API secrets at rest (market7/secretbox.py: first encrypts, all
# decrypt; rotation there). Unset: one key generated once into var/secrets_key (mode 600).
_secrets_key_env = env_str("MARKET7_SECRETS_KEY")
MARKET7_SECRETS_KEYS = secretbox.parse_keys(_secrets_key_env) if _secrets_key_env else secretbox.default_keys(VAR_DIR)
PORT = env_int("PORT", 8000, min_value=1, max_value=65535)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "channels",
    "django_celery_beat",
    "django_prometheus",
    "accounts",
    "trading",
    "strategies",
    "mlops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole request
    "market7.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "market7.csp.ContentSecurityPolicyMiddleware",  # see the security block at the end
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: sees the view and the status
]

ROOT_URLCONF = "market7.urls"
WSGI_APPLICATION = "market7.wsgi.application"
ASGI_APPLICATION = "market7.asgi.application"

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
                "accounts.context_processors.market7",
                "market7.context_processors.live_socket",
            ],
            "builtins": ["market7.templatetags.m7"],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env_db_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'market7.sqlite3'}")}
# django-prometheus' wrappers of the same backends count queries, their latency and errors
# (django_db_*); they subclass Django's own and work with the psycopg pool (docs/monitoring/).
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets readers and one writer work side by side; IMMEDIATE transactions take the write
    # lock up front so web, worker and beat queue for it instead of failing with "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_market7.sqlite3")}
else:
    # Each process borrows connections from ONE bounded psycopg pool (DB_POOL_MIN/MAX/TIMEOUT,
    # market7/serving.py) and gives them back at the end of every request, task or consumer
    # call, under WSGI and ASGI alike; Django requires CONN_MAX_AGE=0 with a pool. The total
    # across web, websocket, worker and beat processes is in docs/deploy.md.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    _pool = serving.pool_options()
    if _pool:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Serving (docs/deploy.md) ---------------------------------------------------------------
# HTTP by gunicorn (market7/gunicorn_conf.py: WEB_WORKERS x WEB_THREADS), websockets by daphne.
# MARKET7_WS_PORT set: pages open their websocket on that port of their own host (make run's
# daphne); unset: on the page's origin (daphne alone, or a proxy sending /ws/ to daphne).
MARKET7_WS_PORT = env_int("MARKET7_WS_PORT", 0, min_value=0, max_value=65535) or None

# --- Redis: broker, result backend, channel layer, cache -------------------------------------
REDIS_URL = env_redis_url("REDIS_URL") or embedded_redis.ensure_running(VAR_DIR / "redis")
REDIS_EMBEDDED = not env_str("REDIS_URL")

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "m7"}
}

# Channels layer (channels_redis), see market7/channel_layers.py: "pubsub" (Redis Pub/Sub,
# the default: Redis pushes a burst of group messages to each server process over one
# subscription, no round trip per message) or "queue" (messages wait in Redis per process, up
# to capacity, for expiry seconds; one round trip each).
CHANNEL_LAYERS = {
    "default": channel_layer_config(
        env_choice("MARKET7_CHANNEL_LAYER", "pubsub", CHANNEL_LAYER_KINDS),
        REDIS_URL,
        prefix=env_str("MARKET7_CHANNEL_PREFIX", "m7"),
        max_connections=env_int("MARKET7_CHANNEL_MAX_CONNECTIONS", 1000, min_value=10, max_value=100_000),
        capacity=env_int("MARKET7_CHANNEL_CAPACITY", 10_000, min_value=100, max_value=1_000_000),
        expiry=env_int("MARKET7_CHANNEL_EXPIRY", 60, min_value=1, max_value=86_400),
    )
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "market7.beat:HeartbeatScheduler"  # the database scheduler + its tick in Redis (/ready)
CELERY_RESULT_EXPIRES = 24 * 3600

# A bot step's claim is a lease renewed while it steps; a dead worker's claim is taken over this
# many seconds after its last renewal (docs/bots.md, "Recovery").
MARKET7_BOT_CLAIM_LEASE_S = env_int("MARKET7_BOT_CLAIM_LEASE_S", 15, min_value=2, max_value=600)
# Broker socket connect/read timeout of an enqueue made from a request (no retries): with Redis
# down a request answers within about twice this and the bot says its step was not queued.
MARKET7_ENQUEUE_TIMEOUT_MS = env_int("MARKET7_ENQUEUE_TIMEOUT_MS", 400, min_value=50, max_value=10_000)

# Scheduled scans (strategies.tasks.scan_watchlists, docs/strategies.md "Scheduled scans"):
# every MARKET7_SCAN_EVERY_S seconds each user's enabled watchlist markets are scanned on closed
# MARKET7_SCAN_TIMEFRAME candles with MARKET7_SCAN_STRATEGIES; scans older than
# MARKET7_SCAN_RETENTION_DAYS days are deleted.
MARKET7_SCAN_EVERY_S = env_int("MARKET7_SCAN_EVERY_S", 300, min_value=60, max_value=86_400)
MARKET7_SCAN_STRATEGIES = env_list(
    "MARKET7_SCAN_STRATEGIES", ["fork_score", "scalping", "dca_detector", "swing", "channel"]
)
MARKET7_SCAN_TIMEFRAME = env_choice("MARKET7_SCAN_TIMEFRAME", "1h", tuple(TIMEFRAME_MS))
MARKET7_SCAN_RETENTION_DAYS = env_int("MARKET7_SCAN_RETENTION_DAYS", 7, min_value=1, max_value=3650)

# Machine learning (mlops, docs/ml.md): model artifacts (XGBoost JSON, hash-checked) live in
# MARKET7_MODELS_DIR; a candidate replaces the active version only when its pooled walk-forward
# metric beats it by MARKET7_ML_PROMOTION_MARGIN (AUC points / MAE fraction); the weekly beat
# retrains every active model on the newest MARKET7_ML_RETRAIN_DAYS days.
MARKET7_MODELS_DIR = Path(env_str("MARKET7_MODELS_DIR") or VAR_DIR / "models")
MARKET7_ML_PROMOTION_MARGIN_BP = env_int("MARKET7_ML_PROMOTION_MARGIN_BP", 100, min_value=0, max_value=10_000)
MARKET7_ML_RETRAIN_EVERY_S = env_int("MARKET7_ML_RETRAIN_EVERY_S", 7 * 86_400, min_value=3600, max_value=90 * 86_400)
MARKET7_ML_RETRAIN_DAYS = env_int("MARKET7_ML_RETRAIN_DAYS", 365, min_value=7, max_value=3650)

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "trading:home"
LOGOUT_REDIRECT_URL = "accounts:login"
MARKET7_SIGNUP_ENABLED = env_bool("MARKET7_SIGNUP_ENABLED", False)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18N / time ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_timezone("TIME_ZONE", "UTC")  # display zone; storage is always UTC
USE_I18N = True
USE_TZ = True

# --- Static files (vendored, served by whitenoise; no CDN) ----------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing root before the first collectstatic
# `make run` collects into STATIC_ROOT; whitenoise also serves straight from the finders (the
# vendored files under static/ and the apps'), so DEBUG off never means a page without its CSS
# because collectstatic was not run. AUTOREFRESH (re-scan on every request) only when debugging.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.tokens.HashedTokenAuthentication",  # keys stored as SHA-256 (accounts.ApiToken)
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "market7.api_schema.Market7AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "market7.pagination.LimitOffsetPagination",  # a bad limit/offset is a 400
    "PAGE_SIZE": 100,
}
_SYSTEM_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
SPECTACULAR_SETTINGS = {
    "TITLE": "Market7 API",
    "DESCRIPTION": (
        "Your bots, their trades and orders, and the shared market data (exchanges, markets, candles).\n\n"
        "**Authentication**: a logged-in browser session, or the header `Authorization: Token <key>` "
        "with the key from your profile page (*Profile & API token*).\n\n"
        "**Lists** are paginated with `limit` and `offset` (100 per page unless said otherwise) and answer "
        "`{count, next, previous, results}`.\n\n"
        '**Errors**: 400 with field errors (`{"params.take_profit": ["must be >= 0.1%"]}`), 403 without '
        "credentials or when your role does not allow the action, 404 for an object that does not exist "
        "or belongs to another user, 409 for a bot action its status does not allow.\n\n"
        "Money, prices and amounts of bots, trades and orders are decimal strings (quote currency for "
        "money and prices); market statistics and candles are numbers. Times are ISO 8601 in UTC; symbols "
        "are ccxt unified symbols (`BTC/USDT`, `BTC/USDT:USDT` for USDT-M perpetuals)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Operations are grouped (tagged) by the first path segment after the prefix: bots, markets...
    "SCHEMA_PATH_PREFIX": r"/api/v1/",
    "TAGS": [
        {"name": "bots", "description": "Create, change and operate your trading bots (paper or live)."},
        {"name": "bot-trades", "description": "Deals of your bots: open and closed, with P&L and exit reason."},
        {"name": "bot-orders", "description": "Orders your bots placed, with fills and reject reasons."},
        {
            "name": "bot-presets",
            "description": "Your saved bot settings (strategy, parameters, risk) to start new bots from.",
        },
        {
            "name": "accounts",
            "description": "Your exchange accounts for live trading: API keys stored encrypted (write-only; only the "
            "key's last 4 characters are shown), testnet flag, and Test connection.",
        },
        {"name": "exchanges", "description": "Exchanges known to Market7 (ccxt ids). Shared, read-only."},
        {"name": "markets", "description": "Markets with their 24 h statistics, and their candles. Shared, read-only."},
        {
            "name": "models",
            "description": "Your ML models (per user): versions with walk-forward metrics, the registry "
            "(activate, deactivate, roll back), training and training jobs.",
        },
        {
            "name": "trading",
            "description": "Account-wide trading actions: the emergency stop of all your bots (live orders "
            "cancelled at the exchange, positions optionally closed at market).",
        },
    ],
    # Two models of the ML app have a "status" field with different choices.
    "ENUM_NAME_OVERRIDES": {
        "ModelVersionStatusEnum": "mlops.models.ModelVersion.Status",
        "TrainingJobStatusEnum": "mlops.models.TrainingJob.Status",
    },
    # Swagger UI and ReDoc come from drf-spectacular-sidecar (served by whitenoise, no CDN);
    # templates/drf_spectacular/redoc.html drops the Google Fonts links of the stock template.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": False},
    "REDOC_UI_SETTINGS": {
        "theme": {"typography": {"fontFamily": _SYSTEM_FONT, "headings": {"fontFamily": _SYSTEM_FONT}}},
    },
}

# --- Market7 --------------------------------------------------------------------------------
# Bundled real Binance candles imported by `make run` and used by tests.
MARKET7_BUNDLED_DATA = BASE_DIR / "trading" / "data" / "bundled"
# The full development data set, when present beside the project (benchmarks, some tests).
MARKET7_SHARED_DATA = Path(env_str("MARKET7_SHARED_DATA") or BASE_DIR.parent / "shared" / "data")
# Tests that need Postgres/Redis/a browser fail instead of skipping when this is on (CI).
MARKET7_REQUIRE_SERVICES = env_bool("MARKET7_REQUIRE_SERVICES", False)

# Logs on stderr: LOG_FORMAT=plain (human) or json (one object per line with request_id and
# bot_id where known; market7/logs.py). Celery keeps its own format unless json is asked for.
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = logging_config(fmt=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# --- Monitoring (market7/metrics.py, market7/health.py, docs/monitoring/) ---------------------
# /metrics: loopback only, unless a token is set: then "Authorization: Bearer <token>" from anywhere.
MARKET7_METRICS_TOKEN = env_str("MARKET7_METRICS_TOKEN") or None
# market7_bot_equity{bot} is exported for at most this many running/paused bots (lowest ids).
MARKET7_METRICS_MAX_BOTS = env_int("MARKET7_METRICS_MAX_BOTS", 100, min_value=0, max_value=10_000)
# /ready: which checks count, their Redis timeout, and how old heartbeats may be.
MARKET7_READY_CHECKS = env_list("MARKET7_READY_CHECKS", list(READY_CHECKS))
if not MARKET7_READY_CHECKS or set(MARKET7_READY_CHECKS) - set(READY_CHECKS):
    raise ImproperlyConfigured(f"MARKET7_READY_CHECKS must name some of {', '.join(READY_CHECKS)}")
MARKET7_READY_TIMEOUT_MS = env_int("MARKET7_READY_TIMEOUT_MS", 500, min_value=50, max_value=10_000)
MARKET7_READY_WORKER_MAX_AGE_S = env_int("MARKET7_READY_WORKER_MAX_AGE_S", 60, min_value=15, max_value=3600)
MARKET7_READY_BEAT_MAX_AGE_S = env_int("MARKET7_READY_BEAT_MAX_AGE_S", 60, min_value=10, max_value=3600)

# --- market data (import/fetch) ---
# Replace ccxt's REST base URLs per exchange (tests point binance at the fake server on
# loopback). Unset: ccxt's own URLs. MARKET7_BINANCE_URL=http://127.0.0.1:8123
MARKET7_EXCHANGE_URLS = {code: url for code, url in {"binance": env_str("MARKET7_BINANCE_URL")}.items() if url}
# ccxt request timeout (ms): short, so an unreachable exchange fails fast.
MARKET7_EXCHANGE_TIMEOUT_MS = env_int("MARKET7_EXCHANGE_TIMEOUT_MS", 10_000, min_value=100, max_value=120_000)
# --- end market data ---

# --- security (cookies, HSTS, headers, CSP) ---------------------------------------------------
# `make run` serves plain http on 127.0.0.1: secure-only cookies would never come back there and
# nobody could log in. So the https-only settings follow MARKET7_HTTPS (default off), which a
# deployment behind a TLS-terminating proxy must set (README "Security"); they stay off with
# DEBUG on. The proxy must set X-Forwarded-Proto (and strip it from clients).
MARKET7_HTTPS = env_bool("MARKET7_HTTPS", False)
_HTTPS = MARKET7_HTTPS and not DEBUG
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if MARKET7_HTTPS else None
SECURE_HSTS_SECONDS = env_int("MARKET7_HSTS_SECONDS", 31_536_000 if _HTTPS else 0, min_value=0, max_value=63_072_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # other sites of the domain are not ours to pin
# Always on (harmless over http): no MIME sniffing, no framing, no referrer to other sites.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy of every page: market7/csp.py. 1 = report only (try a change first).
MARKET7_CSP_REPORT_ONLY = env_bool("MARKET7_CSP_REPORT_ONLY", False)
