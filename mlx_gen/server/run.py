"""`mlx-gen serve`: load, build the engine, print the panel, run uvicorn.

Shutdown on SIGTERM or Ctrl-C: readiness turns false and new requests get a
503 at once; uvicorn stops accepting connections and waits up to
`drain_timeout` for those in flight (streams included); then the engine shuts
down and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from types import FrameType

import uvicorn
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from starlette.applications import Starlette

from mlx_gen.hosts import is_loopback
from mlx_gen.server.served import ServedModel
from mlx_gen.server.state import AppState
from mlx_gen.settings import Settings
from mlx_gen.units import format_bytes

logger = logging.getLogger("mlx_gen.server")


def check_exposure(settings: Settings, n_keys: int) -> str | None:
    """Why this configuration must not start, or None."""
    if n_keys or is_loopback(settings.host) or settings.allow_public_without_auth:
        return None
    return (
        f"refusing to listen on {settings.host} without an API key: give one with "
        "--api-key KEY or --api-key-file FILE (MLX_GEN_API_KEY_FILE), listen on "
        "loopback with --host 127.0.0.1, or pass --allow-public-without-auth "
        "(MLX_GEN_ALLOW_PUBLIC_WITHOUT_AUTH=1) if the network is trusted"
    )


def bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def configure_logging(level: str) -> None:
    """Plain lines on stderr; access lines are bare JSON, one per request."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    access = logging.getLogger("mlx_gen.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False


def panel(settings: Settings, served: ServedModel, url: str, n_keys: int) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Listening", f"{url}/v1  (OpenAI API; /health /ready /metrics)")
    grid.add_row("Model", f"{served.name}  ({served.chat_format.name} chat format)")
    plan = served.engine.stats().plan
    if plan is not None:
        grid.add_row(
            "Memory plan",
            f"weights {format_bytes(plan.weights_bytes)}, KV cache"
            f" {plan.kv_token_budget:,} tokens,"
            f" budget {format_bytes(plan.budget_bytes)}",
        )
    grid.add_row("Context", f"{served.max_context:,} tokens per sequence")
    if n_keys:
        grid.add_row("Auth", f"[green]on[/]: {n_keys} API key{'s' * (n_keys > 1)}")
    else:
        note = "loopback only" if is_loopback(settings.host) else "PUBLIC, allowed"
        grid.add_row("Auth", f"[yellow]off[/]: no API key ({note})")
    limits = [
        f"{v:,} {unit}/min"
        for v, unit in ((settings.rate_limit_rpm, "requests"),
                        (settings.rate_limit_tpm, "tokens"))
        if v
    ]  # fmt: skip
    grid.add_row("Rate limits", ", ".join(limits) or "none")
    return Panel(grid, title="mlx-gen serve", expand=False)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which also flips the app into draining on a signal."""

    def __init__(self, config: uvicorn.Config, state: AppState) -> None:
        super().__init__(config)
        self.app_state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app_state.draining = True
        super().handle_exit(sig, frame)


def _ignore_signal(sig: int, frame: FrameType | None) -> None:
    """uvicorn re-raises the signal it stopped on; the exit was already graceful."""


def load_served(settings: Settings) -> ServedModel:
    """Load `settings.model`, start its engine, pick its chat format.

    The caller owns the engine: `served.engine.shutdown()` when done. Raises
    ModelLoadError, or an EngineError (ModelTooLarge) from the memory plan.
    """
    from mlx_gen.chat import format_for
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import LLMEngine
    from mlx_gen.models.loading import load_model

    if settings.distributed:  # rank 0 of `mlx.launch`; the others follow it
        from mlx_gen.engine.distributed.engine import load_leader

        loaded, engine = load_leader(settings, EngineConfig.from_settings(settings))
    else:
        loaded = load_model(settings.model, settings)
        engine = LLMEngine(
            loaded.model, loaded.tokenizer, EngineConfig.from_settings(settings)
        )
    effort = loaded.entry.reasoning_effort
    chat_format = format_for(loaded.tokenizer, default_effort=effort)
    engine.start()
    plan = engine.plan
    max_context = plan.max_context if plan else settings.max_context
    return ServedModel.from_loaded(loaded, engine, chat_format, max_context)


def serve(settings: Settings) -> int:
    """Run the server until SIGTERM / SIGINT; 0 after a graceful shutdown."""
    from mlx_gen.engine.types import EngineError
    from mlx_gen.server.app import create_app
    from mlx_gen.server.faults import hook_from_env

    errors = Console(stderr=True)
    keys = settings.all_api_keys()
    refusal = check_exposure(settings, len(keys))
    if refusal is not None:
        errors.print(f"[bold red]error:[/] {refusal}")
        return 2
    configure_logging(settings.log_level)
    try:
        served = load_served(settings)
    except EngineError as exc:
        errors.print(f"[bold red]error:[/] {exc}")
        return 1
    try:
        # Tests only: no hook unless MLX_GEN_TEST_FAULT_USER is set (server/faults.py).
        app = create_app(settings, served, request_hook=hook_from_env())
        try:
            sock = bind(settings.host, settings.port)
        except OSError as exc:
            errors.print(f"[bold red]error:[/] cannot listen on {settings.host}:"
                         f"{settings.port}: {exc.strerror or exc}")  # fmt: skip
            return 1
        host, port = sock.getsockname()[:2]
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        Console().print(panel(settings, served, url, len(keys)))
        _run_uvicorn(app, settings, sock)
    finally:
        served.engine.shutdown()
    return 0


def _run_uvicorn(app: Starlette, settings: Settings, sock: socket.socket) -> None:
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.drain_timeout,
        log_level=settings.log_level,
    )
    server = DrainingServer(config, app.state.mlx_gen)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in handled}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
