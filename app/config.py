"""One Settings object for the whole service (environment variables with the APP_ prefix)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_KEYS = '{"dev-1": "dev-only-insecure-signing-key-change-me-0123456789"}'
DEV_WEBHOOK_KEY = "dev-only-insecure-webhook-key-change-me"  # noqa: S105 - refused outside dev/test below
DEV_ADMIN_PASSWORD = "admin-change-me"  # noqa: S105 - refused outside dev/test below

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting the service reads. See README "Configuration" for each one."""

    model_config = SettingsConfigDict(env_prefix="APP_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "APP_DATABASE_URL"),
        description="postgresql+asyncpg://user:pass@host:5432/db; unset = embedded PostgreSQL under var/",
    )
    data_dir: Path = PROJECT_ROOT / "var"
    embedded_db_name: str = "regulator"
    # Connections each worker keeps. A request holds one from its first statement to its commit, so
    # this bounds a worker's concurrent requests in the database; more wait (db_pool_timeout_seconds,
    # then 503 database_busy). No overflow by default: SQLAlchemy closes an overflow connection as soon
    # as it is returned, so under sustained load above the pool size every request opened a new one
    # (a PostgreSQL backend fork and asyncpg's type setup each time), which cost a fifth of the
    # enterprise list's throughput at 32 connections (bench/README.md).
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_pool_timeout_seconds: float = 10.0
    db_statement_timeout_ms: int = 30_000
    # Statements each connection keeps prepared (SQLAlchemy's asyncpg cache; 100 by default; this
    # setting wins over a prepared_statement_cache_size in DATABASE_URL). Every savepoint is a
    # statement of its own text (SAVEPOINT sa_savepoint_1 ... 100 for a batch of 100 inspections
    # written item by item, and as many RELEASEs): with 100 they pushed every other statement out,
    # and each INSERT of the next batch was prepared again, a round trip each.
    db_prepared_statement_cache_size: int = Field(default=500, ge=0)

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    run_background_jobs: bool = True
    background_interval_seconds: float = 2.0

    jwt_keys: str = Field(default=DEV_JWT_KEYS, description='JSON object {"kid": "secret", ...}')
    jwt_active_kid: str = "dev-1"
    jwt_issuer: str = "pqs-regulator"
    jwt_audience: str = "pqs-regulator-api"
    access_token_ttl_seconds: int = 900
    principal_cache_seconds: float = Field(
        default=300.0, ge=0, description="how long a resolved access token is served from memory at most "
                                         "(app/principals.py; changes to users, service accounts and revoked "
                                         "tokens empty the cache at once); 0 turns the cache off")
    refresh_token_ttl_seconds: int = 14 * 24 * 3600

    login_slowdown_after: int = 3
    login_slowdown_base_seconds: float = 0.5
    login_slowdown_max_seconds: float = 4.0
    login_lockout_after: int = 6
    login_lockout_seconds: int = 900
    login_failure_window_seconds: int = 900

    storage_dir: Path | None = Field(default=None, description="attachment files; unset = data_dir/files")
    attachment_max_bytes: int = 20 * 1024 * 1024

    idempotency_ttl_days: int = 30
    webhook_key: str = Field(default=DEV_WEBHOOK_KEY, min_length=16,
                             description="derives each webhook subscription's HMAC secret; set in prod")
    webhook_allowed_hosts: str = Field(default="", description="comma-separated host names (or domain suffixes "
                                       "starting with a dot) webhooks may point at; empty: any host")
    run_delivery_worker: bool = Field(default=True, description="deliver webhooks from inside the service "
                                      "(false: run `python -m app.cli deliver` as its own process)")
    delivery_poll_seconds: float = 1.0
    delivery_timeout_seconds: float = 5.0
    delivery_max_attempts: int = 25
    delivery_backoff_base_seconds: float = 2.0
    delivery_backoff_max_seconds: float = 3600.0
    report_due_days: int = Field(default=0, ge=0, le=31, description="days after a period's last day within "
                                 "which its report is on time (0: by the end of that day)")
    public_rate_limit: str = Field(default="60/minute", description="per client address on /api/public/v1 "
                                   "(limits notation, e.g. 60/minute)")
    case_stage_days: dict[str, int] = Field(
        default={"registered": 7, "investigating": 60, "pending_approval": 10, "decided": 30},
        description="time limit of each case stage in days (JSON); a case past it is overdue and listed upward",
    )
    audit_log_enabled: bool = Field(
        default=True, description="benchmark switch only: false writes no audit rows (refused in prod)"
    )

    bootstrap_admin_username: str | None = "admin"
    bootstrap_admin_password: str | None = DEV_ADMIN_PASSWORD
    bootstrap_admin_region: str = "000000"

    log_level: str = "INFO"
    log_json: bool = True
    # one line per request (uvicorn's access log, with the request id); about 5 % of a list request's
    # CPU: turn it off behind a reverse proxy that logs requests itself
    access_log: bool = True

    @field_validator("jwt_keys")
    @classmethod
    def _keys_are_json_object(cls, v: str) -> str:
        keys = json.loads(v)
        if not isinstance(keys, dict) or not keys or not all(
            isinstance(k, str) and isinstance(s, str) and len(s) >= 32 for k, s in keys.items()
        ):
            raise ValueError('jwt_keys must be a JSON object {"kid": "secret of at least 32 chars"}')
        return v

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_dev(self) -> Settings:
        if self.jwt_active_kid not in self.key_set:
            raise ValueError("jwt_active_kid must name a key in jwt_keys")
        # Public dev secrets are for a developer's own machine: never with prod, never listening beyond loopback.
        if self.env == "prod" or self.host not in ("127.0.0.1", "localhost", "::1"):
            if self.jwt_keys == DEV_JWT_KEYS:
                raise ValueError("APP_JWT_KEYS must be set in prod or when serving beyond loopback "
                                 "(the default key is public)")
            if self.webhook_key == DEV_WEBHOOK_KEY:
                raise ValueError("APP_WEBHOOK_KEY must be set in prod or when serving beyond loopback")
            if self.bootstrap_admin_password == DEV_ADMIN_PASSWORD:
                raise ValueError("APP_BOOTSTRAP_ADMIN_PASSWORD must be set in prod or when serving beyond loopback")
            if not self.audit_log_enabled:
                raise ValueError("APP_AUDIT_LOG_ENABLED=false is a benchmark switch, refused in prod")
        return self

    @property
    def files_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "files"

    @property
    def key_set(self) -> dict[str, str]:
        keys: dict[str, str] = json.loads(self.jwt_keys)
        return keys


@lru_cache
def get_settings() -> Settings:
    return Settings()
