"""Configuration, read from NODELOOM_* environment variables. Refuses bad configuration at start-up."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    model_config = SettingsConfigDict(env_prefix="NODELOOM_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".nodeloom")
    database_url: str | None = None
    secret_key: str | None = None
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    queue: Literal["sql", "celery"] = "sql"
    broker_url: str | None = None
    redis_url: str | None = None
    public_url: str | None = None
    web_dist: Path | None = None  # the built dashboard (default: web/dist of the checkout or the working dir)

    allow_private_urls: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: extra node packs (module names exposing `nodes()`), e.g. an operator's own nodes
    node_packs: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # workers and scheduling (every schedule is configuration, so tests use seconds)
    embedded_workers: bool = True
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    process_pool_size: int = Field(default=2, ge=0, le=64)
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    poll_interval_seconds: float = Field(default=0.2, gt=0)
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    node_timeout_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    graph_concurrency: int = Field(default=8, ge=1)

    # limits
    max_nodes: int = Field(default=500, ge=1)
    max_params_bytes: int = Field(default=64 * 1024, ge=256)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_fetch_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    signed_url_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    cache_entries_per_account: int = Field(default=256, ge=0)

    # webhooks: callback delivery (each delay counts from the previous attempt; jitter is a fraction of it)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400])
    webhook_retry_jitter: float = Field(default=0.1, ge=0, le=1)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_sender_concurrency: int = Field(default=16, ge=1, le=512)

    # retention (days); idempotency in hours
    retention_days: float = 30.0
    idempotency_hours: float = 24.0

    # plans, rate limits and quotas. NODELOOM_PLANS='{"free": {"requests_per_minute": 20}}' changes only
    # the fields it names; windows are `rate_limit_window_seconds` long (a minute; tests shorten it)
    plans: dict[str, PlanLimits] = Field(default_factory=lambda: {k: PlanLimits(**v) for k, v in DEFAULT_PLANS.items()})
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

    @field_validator("cors_origins", "node_packs", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        if isinstance(v, str):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

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
            import json

            v = json.loads(v)
        if not isinstance(v, dict):
            return v
        merged: dict[str, object] = {k: dict(p) for k, p in DEFAULT_PLANS.items()}
        for name, given in v.items():
            fields = given.model_dump() if isinstance(given, PlanLimits) else given
            merged[name] = {**merged.get(name, {}), **fields} if isinstance(fields, dict) else fields  # type: ignore[dict-item]
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
