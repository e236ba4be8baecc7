"""The one typed Settings object, read by Alembic, the worker, the CLI and Streamlit alike."""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aiconsole.platform.errors import ConfigError


def normalize_database_url(url: str) -> str:
    """Map the URL spellings people paste (postgres://, postgresql://) onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Settings(BaseSettings):
    """Every setting, from AICONSOLE_* environment variables (or a .env file), with embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="AICONSOLE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".aiconsole"),
                           description="Where the SQLite file, photo bytes and the generated secret key live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in data_dir.")
    service_database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the service role (workers, migrations, reaper, login, CLI): "
                                  "on PostgreSQL a role row-level security lets through, while database_url is "
                                  "the console's role, confined to one organization. Default: database_url.")
    redis_url: str | None = Field(default=None,
                                  description="Redis for the shared cache; in-process cache when unset.")
    secret_key: SecretStr | None = Field(default=None,
                                         description="Encrypts provider keys; generated into data_dir when unset.")

    session_ttl_minutes: int = Field(default=480, ge=5, le=60 * 24 * 30)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    cache_ttl_seconds: int = Field(default=300, ge=0,
                                   description="Analytics read-query cache TTL (the guide's 5 minutes).")
    live_cache_ttl_seconds: int = Field(default=3, ge=0, description="Live Status data cache TTL.")

    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=60_000_000, ge=10_000)
    max_image_side: int = Field(default=12_000, ge=100)

    worker_stale_seconds: int = Field(default=60, ge=5,
                                      description="A worker without a heartbeat this long is shown as down.")
    lease_seconds: int = Field(default=120, ge=5)

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    demo_emulator_url: str | None = Field(
        default=None, description="Send demo organizations' google-vision and gemini calls to this emulator "
                                  "(set by `aiconsole up --emulate`).")
    provider_host_allowlist: str = Field(
        default="", description="Comma-separated hosts, besides each provider's own, that provider calls and stored "
                                "keys may go to over https; http://host also allows plain http to that host (a "
                                "loopback emulator, a proxy inside the network). See aiconsole.providers.endpoints.")

    @field_validator("database_url", "service_database_url")
    @classmethod
    def _normalize(cls, v: str | None) -> str | None:
        return normalize_database_url(v) if v else v

    @field_validator("demo_emulator_url")
    @classmethod
    def _emulator_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{v[:200]}' is not an http(s) URL such as http://127.0.0.1:8787")
        return v.rstrip("/")

    @field_validator("provider_host_allowlist")
    @classmethod
    def _host_allowlist(cls, v: str) -> str:
        for entry in (e.strip() for e in v.split(",")):
            host = entry.lower().removeprefix("https://").removeprefix("http://")
            if entry and not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", host):
                raise ValueError(f"'{entry[:100]}' is not a host name (or http://host): write hosts only, without "
                                 "a port, path or wildcard, separated by commas")
        return v

    @model_validator(mode="after")
    def _service_beside_database(self) -> Settings:
        # The service role works on the database the console uses; without one, that is the embedded SQLite.
        if self.service_database_url and not self.database_url:
            raise ValueError("AICONSOLE_SERVICE_DATABASE_URL is set but AICONSOLE_DATABASE_URL is not: set both "
                             "(the console's role and the service role on the same PostgreSQL database)")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL actually used: the configured one or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'aiconsole.db').resolve()}"

    @property
    def resolved_service_database_url(self) -> str:
        """The URL service work connects with: the service role's, or the single URL when none is set."""
        return self.service_database_url or self.resolved_database_url

    @property
    def separate_service_role(self) -> bool:
        """Whether service work connects differently from user sessions (the two-role setup)."""
        return self.resolved_service_database_url != self.resolved_database_url

    @property
    def photo_dir(self) -> Path:
        """Content-addressed photo store."""
        return self.data_dir / "photos"

    def resolved_secret_key(self) -> str:
        """The Fernet-compatible secret: from the environment, else generated once into data_dir (mode 0600)."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value().strip()
            if len(value) < 32:
                raise ConfigError(
                    "AICONSOLE_SECRET_KEY is too short.",
                    hint="Use at least 32 characters, e.g. the output of "
                    "`python -c 'import secrets;print(secrets.token_urlsafe(48))'`.",
                )
            return value
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call `get_settings.cache_clear()` after changing the environment)."""
    return Settings()
