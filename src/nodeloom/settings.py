"""Configuration, read once from the environment at start-up. Refuses bad configuration at start-up.

Every setting the server, its workers and its nodes use is a field of `Settings`: NODELOOM_* variables,
plus the vendor keys under the vendors' own names (FAL_KEY, REPLICATE_API_TOKEN, OPENAI_API_KEY,
GEMINI_API_KEY). Nothing else in the package reads the environment, so this is the one place that says
what is configurable — and, once it has been read, `scrub_secret_environment` takes the secrets back
out of the environment, where child processes and node packs would otherwise find them.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from nodeloom.providers.base import Polling
from nodeloom.providers.config import PROVIDER_SETTINGS, ProviderConfig
from nodeloom.providers.routing import RetryPolicy


class PlanLimits(BaseModel):
    """What one plan allows (API.md "Rate limits, quotas, plans"); accounts may override any field."""

    requests_per_minute: int = Field(ge=1)
    executions_per_day: int | None = Field(default=None, ge=0)  # None: unlimited
    executions_per_minute: int = Field(ge=1)
    concurrency: int = Field(ge=1)  # executions running at once; the rest wait in the queue


DEFAULT_PLANS: dict[str, dict[str, int | None]] = {
    "free": {"requests_per_minute": 10, "executions_per_day": 50, "executions_per_minute": 10, "concurrency": 2},
    "starter": {"requests_per_minute": 20, "executions_per_day": 200, "executions_per_minute": 10, "concurrency": 4},
    "pro": {"requests_per_minute": 60, "executions_per_day": 1000, "executions_per_minute": 10, "concurrency": 10},
    "enterprise": {"requests_per_minute": 200, "executions_per_day": None, "executions_per_minute": 10,
                   "concurrency": 50},
}


class Settings(BaseSettings):
    # populate_by_name: the vendor keys are read from FAL_KEY & co. but may be given by field name (fal_key=…)
    model_config = SettingsConfigDict(env_prefix="NODELOOM_", extra="ignore", populate_by_name=True)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".nodeloom")
    database_url: str | None = Field(default=None, repr=False)
    secret_key: str | None = Field(default=None, repr=False)
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    queue: Literal["sql", "celery"] = "sql"
    broker_url: str | None = Field(default=None, repr=False)
    redis_url: str | None = Field(default=None, repr=False)
    public_url: str | None = None
    #: the origin signed file links use (e.g. "https://files.example.com"), so uploaded and produced files are
    #: served apart from the API's and dashboard's origin; the same server answers there (default: public_url)
    files_url: str | None = None
    web_dist: Path | None = None  # the built dashboard (default: web/dist of the checkout or the working dir)

    allow_private_urls: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: extra node packs (module names exposing `nodes()`), e.g. an operator's own nodes
    node_packs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: the shared ComfyUI pool: base URLs of ComfyUI servers (operator-configured, trusted), e.g.
    #: "http://gpu1:8188,http://gpu2:8188"; every API process and worker reads the same state from the database
    comfyui_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: how often each worker checks the pool (`/system_stats`, `/queue`; `/object_info` every tenth time)
    comfyui_check_seconds: float = Field(default=10.0, gt=0)
    #: the Python that runs a ComfyUI started with `serve/worker --comfyui PATH` (default: PATH/.venv, PATH/venv,
    #: or the `venv` next to PATH, as `make comfyui` lays it out)
    comfyui_python: Path | None = None
    #: internal, never configured: the base URL of the ComfyUI that this process started (`--comfyui PATH`), a
    #: server private to this process; the CLI sets it (`model_copy`) once the child answers
    comfyui_local_url: str | None = None
    #: ComfyUI node classes that graphs may use on the pool (empty: every class of the servers' `/object_info`
    #: except paid partner `api_node` classes); e.g. "CheckpointLoaderSimple,KSampler,VAEDecode,SaveImage"
    comfyui_allowed_nodes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: a segment that runs longer on ComfyUI than this is interrupted and fails `node_timeout`
    comfyui_max_seconds: float = Field(default=600.0, gt=0, le=86400)
    #: what one second of a segment on ComfyUI costs (a segment holds this × comfyui_max_seconds)
    comfyui_credits_per_second: float = Field(default=0.01, ge=0)
    #: caps on shared servers: the largest image (pixels) sent to or asked of ComfyUI, the largest batch
    comfyui_max_image_pixels: int = Field(default=4096 * 4096, ge=1)
    comfyui_max_batch: int = Field(default=16, ge=1)
    #: how many times a segment is sent again when its server dies under it
    comfyui_max_attempts: int = Field(default=3, ge=1, le=20)

    # workers and scheduling (every schedule is configuration, so tests use seconds)
    embedded_workers: bool = True
    #: `serve`: worker processes beside the API process (0: executions run in the API process itself)
    worker_processes: int = Field(default=0, ge=0, le=64)
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    #: what one execution's node outputs may hold in memory at once (decoded images, buffers); past it the node
    #: that would cross it fails `node_memory`
    execution_memory_mb: int = Field(default=4096, ge=16)
    process_pool_size: int = Field(default=2, ge=0, le=64)
    #: built-in image operations (Pillow/OpenCV/NumPy, which release the GIL) on images up to this many pixels run
    #: on threads of the worker, not pickled through the process pool and back; larger ones, models and operators'
    #: packs use the pool. 0: always the pool (when it has processes)
    cpu_local_max_pixels: int = Field(default=2048 * 2048, ge=0)
    #: a verified API key is remembered this long by the process that verified it (no database read per request);
    #: revoking a key ends it at once in the process that revoked it, within this many seconds in the others
    auth_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    poll_interval_seconds: float = Field(default=0.2, gt=0)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    node_timeout_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    graph_concurrency: int = Field(default=8, ge=1)
    #: executions a worker holds beyond `worker_concurrency` while their nodes only sleep (`util.delay`): a
    #: sleeping node lends its slot back; this bounds how many such parked executions one worker keeps
    worker_sleeping_slots: int = Field(default=32, ge=0, le=4096)
    #: only sleeps at least this long lend their slot (a short pause keeps it: not worth a claim)
    worker_lend_sleeps_from_seconds: float = Field(default=5.0, ge=0)
    #: a worker whose event loop stalls this long while it holds leases exits, so a frozen run can never
    #: outlive its lease and run beside the next attempt; None: derived from the lease (lease − heartbeat,
    #: less a margin); 0 turns it off. Off by default where environment=test (tests run servers in-process)
    loop_watchdog_seconds: float | None = Field(default=None, ge=0)

    # budgets for work a user programs (templates, regexes, JSON queries): run in killable child processes
    sandbox_cpu_seconds: float = Field(default=2.0, gt=0, le=600)
    sandbox_wall_seconds: float = Field(default=10.0, gt=0, le=3600)
    sandbox_memory_mb: int = Field(default=256, ge=32, le=65536)
    #: children kept warm between calls, and the most that run at once (further calls wait for one)
    sandbox_warm_processes: int = Field(default=2, ge=0, le=64)
    sandbox_max_processes: int = Field(default=8, ge=1, le=256)

    # limits
    #: the most nodes one graph may have (ComfyUI itself fails near 1,000 with a recursion error; the engine is
    #: linear and runs far larger graphs: raise it with NODELOOM_MAX_NODES)
    max_nodes: int = Field(default=1000, ge=1)
    #: SQLite only (docs/deployment.md "Durability"): NORMAL (default) — a committed execution survives a crash of
    #: the process (and of every process); FULL — it also survives power loss or a kernel panic (an fsync at
    #: every commit). PostgreSQL's own `synchronous_commit` decides there.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: SQLite only: the page cache of each pooled connection, KiB (docs/deployment.md "Sizing")
    sqlite_cache_kib: int = Field(default=256, ge=16, le=1024 * 1024)
    max_params_bytes: int = Field(default=64 * 1024, ge=256)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_fetch_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    signed_url_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    cache_entries_per_account: int = Field(default=256, ge=0)

    # webhooks: callback delivery (each delay counts from the previous attempt; jitter is a fraction of it)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    #: beyond its timeout, how long a claimed delivery attempt stays leased (one cut by a crash is retried after)
    webhook_lease_margin_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0])
    webhook_retry_jitter: float = Field(default=0.1, ge=0, le=1)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_sender_concurrency: int = Field(default=16, ge=1, le=512)

    # retention (days); idempotency in hours
    retention_days: float = 30.0
    idempotency_hours: float = 24.0

    # plans, rate limits and quotas. NODELOOM_PLANS='{"free": {"requests_per_minute": 20}}' changes only
    # the fields it names; windows are `rate_limit_window_seconds` long (a minute; tests shorten it)
    plans: dict[str, PlanLimits] = Field(
        default_factory=lambda: {k: PlanLimits.model_validate(v) for k, v in DEFAULT_PLANS.items()})
    rate_limits_enabled: bool = True  # False: requests and executions are counted (headers) but never refused
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    anonymous_requests_per_minute: int = Field(default=60, ge=1)  # per client address, without a valid key
    session_requests_per_minute: int = Field(default=600, ge=1)  # per dashboard session
    rate_limit_namespace: str = Field(default="nodeloom", min_length=1, max_length=64)  # Redis key prefix
    plan_cache_seconds: float = Field(default=5.0, ge=0)  # how long a process trusts an account's plan

    # dashboard sign-in: sign-up creates an account (free plan) and its owner; failed sign-ins are
    # limited per email and client address
    signup_enabled: bool = False
    session_ttl_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    login_attempts_per_window: int = Field(default=10, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    # hosted model vendors (`nodeloom.providers`, handed over as `provider_config()`): base URLs under
    # NODELOOM_*, the operator's keys under the vendors' own variable names
    fal_url: str | None = None
    fal_key: str | None = Field(default=None, validation_alias="FAL_KEY", repr=False)
    replicate_url: str | None = None
    replicate_api_token: str | None = Field(default=None, validation_alias="REPLICATE_API_TOKEN", repr=False)
    openai_base_url: str | None = None
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY", repr=False)
    #: the model language-model nodes ask an OpenAI-compatible server for, when it is not OpenAI's own
    #: (an Ollama, vLLM or llama.cpp server names its models itself); empty: the table's model id
    openai_chat_model: str | None = None
    gemini_url: str | None = None
    gemini_api_key: str | None = Field(default=None, validation_alias="GEMINI_API_KEY", repr=False)
    #: vendors in the order to try them, e.g. "replicate,fal"; vendors not named keep the table's order
    provider_order: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: the most one hosted node may spend at vendors, fallbacks included (the node's own timeout caps it too)
    provider_deadline_seconds: float = Field(default=1800.0, gt=0)
    #: the most one provider attempt may take before the route moves on (a stuck vendor)
    provider_attempt_timeout_seconds: float = Field(default=900.0, gt=0)
    provider_max_attempts: int = Field(default=3, ge=1, le=10)
    provider_retry_base_seconds: float = Field(default=0.5, ge=0)
    provider_max_retry_after_seconds: float = Field(default=120.0, ge=0)
    provider_poll_interval_seconds: float = Field(default=0.5, gt=0)
    provider_poll_max_interval_seconds: float = Field(default=5.0, gt=0)

    #: a folder of diffusers model folders (sdxl-turbo/, FLUX.1-schnell/, … each with its model_index.json)
    #: for `generate.diffusers` on GPU workers; the node gets it as the `diffusers_models_dir` service
    diffusers_models_dir: Path | None = None

    @field_validator("cors_origins", "node_packs", "provider_order", "comfyui_urls", "comfyui_allowed_nodes",
                     mode="before")
    @classmethod
    def _split_commas(cls, v: object) -> object:
        if isinstance(v, str):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

    @field_validator("comfyui_urls")
    @classmethod
    def _comfyui_urls(cls, v: list[str]) -> list[str]:
        urls = []
        for url in v:
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise ValueError(f"NODELOOM_COMFYUI_URLS: {url!r} is not a URL") from exc
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"NODELOOM_COMFYUI_URLS: {url!r} must be an http(s) URL with a host")
            urls.append(url.rstrip("/"))
        if len(set(urls)) != len(urls):
            raise ValueError("NODELOOM_COMFYUI_URLS names a server twice")
        return urls

    @field_validator("provider_order")
    @classmethod
    def _known_providers(cls, v: list[str]) -> list[str]:
        unknown = [name for name in v if name not in PROVIDER_SETTINGS]
        if unknown:
            raise ValueError(f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(PROVIDER_SETTINGS)}")
        return v

    @field_validator("fal_url", "replicate_url", "openai_base_url", "gemini_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            url = httpx.URL(v.strip())
        except httpx.InvalidURL as exc:
            raise ValueError(f"{v!r} is not a URL") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{v!r} must be an http(s) URL with a host")
        return v.strip()

    @field_validator("diffusers_models_dir", "comfyui_python", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        # an empty NODELOOM_DIFFUSERS_MODELS_DIR= means "not configured", not the working directory
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, v: object) -> object:
        if isinstance(v, str):  # "5,300,1800" or "[5, 300, 1800]"
            return [float(part) for part in v.strip().strip("[]").split(",") if part.strip()]
        return v

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _check_schedule(cls, v: list[float]) -> list[float]:
        if any(delay < 0 for delay in v):
            raise ValueError("webhook retry delays must not be negative")
        return v

    @field_validator("plans", mode="before")
    @classmethod
    def _merge_plans(cls, v: object) -> object:
        if isinstance(v, str):
            v = json.loads(v)
        if not isinstance(v, dict):
            return v
        merged: dict[str, object] = {k: dict(p) for k, p in DEFAULT_PLANS.items()}
        for name, given in v.items():
            fields = given.model_dump() if isinstance(given, PlanLimits) else given
            base = merged.get(name)
            merged[name] = {**base, **fields} if isinstance(base, dict) and isinstance(fields, dict) else fields
        return merged

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.environment == "production" and not self.secret_key:
            raise ValueError("NODELOOM_SECRET_KEY must be set in production")
        if self.secret_key is not None and len(self.secret_key) < 16:
            raise ValueError("NODELOOM_SECRET_KEY must be at least 16 characters")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'nodeloom.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        return (self.data_dir / "files").resolve()

    @property
    def run_dir(self) -> Path:
        """The wake-up sockets of the processes sharing this data dir (`services.hub.LocalBus`)."""
        return (self.data_dir / "run").resolve()

    def provider_config(self) -> ProviderConfig:
        """The vendor settings as the `providers` service (`HostedModels`) takes them: a frozen view, so the
        service handed to nodes holds vendor URLs and keys but not the rest of the configuration."""
        return ProviderConfig(
            base_urls={"fal": self.fal_url, "replicate": self.replicate_url, "openai": self.openai_base_url,
                       "gemini": self.gemini_url},
            keys={"fal": self.fal_key, "replicate": self.replicate_api_token, "openai": self.openai_api_key,
                  "gemini": self.gemini_api_key},
            chat_model=self.openai_chat_model or None,
            order=tuple(self.provider_order),
            deadline_s=self.provider_deadline_seconds,
            attempt_timeout_s=self.provider_attempt_timeout_seconds,
            retry=RetryPolicy(max_attempts=self.provider_max_attempts, base_delay=self.provider_retry_base_seconds,
                              max_retry_after=self.provider_max_retry_after_seconds),
            polling=Polling(interval=self.provider_poll_interval_seconds,
                            max_interval=max(self.provider_poll_max_interval_seconds,
                                             self.provider_poll_interval_seconds)),
        )

    def configured_base_urls(self) -> list[str]:
        """Vendor base URLs the operator set: trusted by the address guard (API.md "Addresses the server calls")."""
        return self.provider_config().configured_base_urls()

    def watchdog_seconds(self) -> float:
        """How long a worker's event loop may stall while it holds leases before the process exits (0: never).
        Derived: the lease less one heartbeat, less a quarter for margin, so a frozen process is gone before the
        lease it could no longer extend runs out and another worker claims the execution again."""
        if self.loop_watchdog_seconds is not None:
            return self.loop_watchdog_seconds
        if self.environment == "test":
            return 0.0
        return max(0.5, (self.lease_seconds - self.heartbeat_seconds) * 0.75)

    def ensure_secret(self) -> str:
        """The server secret: configured, or generated once into the data dir (embedded default)."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        self.secret_key = path.read_text().strip()
        return self.secret_key


# --- secrets leave the environment once read ----------------------------------------------------------

#: Settings fields that hold secrets, or URLs whose user-info carries a password (database, broker, Redis)
SECRET_FIELDS = ("secret_key", "database_url", "broker_url", "redis_url",
                 "fal_key", "replicate_api_token", "openai_api_key", "gemini_api_key")
#: the S3 store's credentials: Settings does not read them, boto3 does — once, when `make_blob_store` builds
#: its client (botocore resolves the credential chain in `create_client`), so the store is built before scrubbing
AWS_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
#: read like the others, but a secret only when it carries credentials (`s3://bucket/prefix` does not)
STORAGE_URL_VARIABLE = "NODELOOM_STORAGE_URL"


def secret_variables() -> tuple[str, ...]:
    """The names of the variables `scrub_secret_environment` always removes, derived from the fields
    (an alias such as FAL_KEY, else NODELOOM_<FIELD>), so a renamed field cannot leave its secret behind."""
    prefix = str(Settings.model_config.get("env_prefix") or "")
    names = []
    for name in SECRET_FIELDS:
        alias = Settings.model_fields[name].validation_alias
        names.append((alias if isinstance(alias, str) else prefix + name).upper())
    return (*names, *AWS_CREDENTIAL_VARIABLES)


def _carries_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return True  # unparseable: treat it as a secret rather than leave it behind
    return bool(parts.username or parts.password or parts.query)


def is_server_variable(name: str) -> bool:
    """Whether `name` is the server's own configuration (any NODELOOM_* variable, a vendor key the hosted
    models use, the S3 store's AWS credentials): never handed to a node, whatever it declares."""
    upper = name.upper()
    prefix = str(Settings.model_config.get("env_prefix") or "").upper()
    return upper in secret_variables() or bool(prefix) and upper.startswith(prefix)


def read_node_secrets(declared: Mapping[str, Iterable[str]], *,
                      environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The raw secrets node types declare (`Node.secrets`, given by node type name), read once at start-up.

    Read here, with every other setting, so that one rule holds in one place: a node never receives the
    server's own configuration. A node pack is third-party code; declaring FAL_KEY or NODELOOM_SECRET_KEY
    must not be a way to obtain them, so such a declaration refuses to start, naming the node type and
    the variable (the pack should name a variable of its own, e.g. ACME_API_KEY, for the operator to set).
    Names that are not set are left out (`ctx.secret` answers None).
    """
    refused = {node_type: sorted({name for name in names if is_server_variable(name)})
               for node_type, names in sorted(declared.items())}
    if any(refused.values()):
        which = "; ".join(f"'{node_type}' declares {', '.join(names)}" for node_type, names in refused.items() if names)
        raise ValueError(f"node types may not read the server's own configuration: {which}. "
                         "A node pack names a variable of its own (e.g. ACME_API_KEY) for the operator to set")
    names = sorted({name for names in declared.values() for name in names})
    return {name: environ[name] for name in names if name in environ}


def scrub_secret_environment(*, environ: MutableMapping[str, str] = os.environ,
                             node_secrets: Iterable[str] = ()) -> list[str]:
    """Remove every variable that holds a secret the configuration has read; the names removed, sorted.

    Call it once `Settings` and the object graph are built (`nodeloom serve` and `nodeloom worker` do):
    from then on nothing needs them there, and the environment is where secrets leak — to every child
    process (ffmpeg, the process pool, a node's subprocess), to `os.environ` reads in node packs, to
    crash reporters that dump it. Removed: the server secret, the database, broker and Redis URLs, the
    vendor keys, the AWS credentials boto3 reads for the S3 store, NODELOOM_STORAGE_URL when it carries
    credentials, and `node_secrets` (the names node types declared, already read by `read_node_secrets`).
    Names match regardless of case, as Settings reads them (`fal_key` is FAL_KEY).

    Whatever reads one of them lazily must be built first: the S3 store's boto3 client takes the AWS
    variables when it is created (refreshable env credentials, AWS_CREDENTIAL_EXPIRATION, would re-read
    them; a process's environment cannot be renewed from outside anyway). `Settings()` built after the
    scrub no longer sees these values: build it once and pass it on.

    On Linux, /proc/<pid>/environ keeps the environment the process was started with even after
    unsetenv(); when `environ` is the process environment, those entries are overwritten too.
    """
    always = {*secret_variables(), *(name.upper() for name in node_secrets)}
    removed = sorted(name for name, value in environ.items()
                     if name.upper() in always
                     or (name.upper() == STORAGE_URL_VARIABLE and _carries_credentials(value)))
    for name in removed:
        del environ[name]
    if environ is os.environ and removed:
        _wipe_initial_environment(set(removed))
    return removed


def _wipe_initial_environment(names: set[str]) -> None:
    """Overwrite `NAME=value` entries of the process's initial environment block (Linux).

    unsetenv() only drops the pointers; the strings the kernel copied in at exec stay in memory, and
    /proc/self/environ (readable by the process itself, and by its user's other processes) still shows
    them. Nothing refers to an unset entry any more, so zeroing it is safe. Best effort: a kernel without
    the fields, or any surprise, leaves the block as it was.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end: fields 50 and 51 of stat(5)
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except (OSError, IndexError, ValueError):
        return
    offset = 0
    for entry in block.split(b"\0"):
        name = entry.partition(b"=")[0].decode(errors="replace")
        if entry and name in names and start + offset + len(entry) <= end:
            ctypes.memset(start + offset, 0, len(entry))
        offset += len(entry) + 1
