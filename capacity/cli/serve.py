"""`capacity serve`: the API and websocket service, with the uvicorn settings every server uses."""

from __future__ import annotations

import os
import shutil
import signal
from typing import Annotated, Any

import typer
import uvicorn

from capacity.cli.common import console
from capacity.config import Settings, get_settings
from capacity.store.connection import EmbeddedRedis, start_embedded_redis

app = typer.Typer()


def server_options(settings: Settings, *, host: str | None, port: int | None, workers: int = 1) -> dict[str, Any]:
    """uvicorn settings measured to serve best here: uvloop + httptools, no websocket compression."""
    return {
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "ws_max_size": settings.ws_max_message_bytes,
        "log_level": "warning",
        "proxy_headers": True,
    }


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def ensure_redis(settings: Settings) -> EmbeddedRedis | None:
    """Without REDIS_URL start the embedded Redis here, so that every worker shares it.

    SIGTERM then exits normally, so the embedded server is shut down (uvicorn re-raises the
    signal after its own shutdown, which would otherwise kill us before clean-up).
    """
    if settings.redis_url:
        return None
    embedded = start_embedded_redis(settings.data_dir)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ["REDIS_URL"] = embedded.url
    console.print(f"[dim]embedded Redis at {embedded.url} (data under {settings.data_dir / 'redis'})[/dim]")
    return embedded


def _prepare_multiprocess_metrics(settings: Settings, workers: int) -> None:
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = settings.data_dir / "prometheus"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default CAPACITY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CAPACITY_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; each fans out to its own clients.")] = 1,
) -> None:
    """Run the API and websocket service."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = ensure_redis(settings)
    _prepare_multiprocess_metrics(settings, workers)
    try:
        uvicorn.run("capacity.app:create_app", factory=True, **server_options(settings, host=host, port=port, workers=workers))
    finally:
        if embedded:
            embedded.close()
