"""Fixtures of the server tests: the tiny model behind a real engine and app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlx_gen.server.served import ServedModel

from .helpers import LiveServer, Script, live, script_ids, settings_for

MODEL = "tiny"


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_path: Path) -> Any:
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(tiny_model_path)


@pytest.fixture(scope="session")
def harmony(tiny_tokenizer: Any) -> Any:
    from mlx_gen.chat import format_for

    return format_for(tiny_tokenizer, today="2026-01-01")


@pytest.fixture(scope="session")
def engine(tiny_model_path: Path) -> Iterator[Any]:
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import load_engine

    engine = load_engine(tiny_model_path, EngineConfig(max_batch_size=8))
    yield engine
    engine.shutdown()


@pytest.fixture(scope="session")
def session_script() -> Script:
    return Script()


@pytest.fixture
def script(session_script: Script) -> Iterator[Script]:
    session_script.reset()
    yield session_script
    session_script.reset()


@pytest.fixture(scope="session")
def served(engine: Any, tiny_tokenizer: Any, harmony: Any) -> ServedModel:
    return ServedModel(
        name=MODEL,
        engine=engine,
        chat_format=harmony,
        tokenizer=tiny_tokenizer,
        max_context=4096,
        vocab_size=len(tiny_tokenizer),
    )


@pytest.fixture(scope="module")
def server(served: ServedModel, session_script: Script) -> Iterator[LiveServer]:
    """A server with the default settings: no keys, no limits; `script` sets
    what it answers."""
    from mlx_gen.server.app import create_app

    app = create_app(settings_for(), served, request_hook=session_script)
    with live(app) as running:
        yield running


@pytest.fixture
def client(server: LiveServer) -> Any:
    """The official SDK, pointed at `server`."""
    import openai

    return openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0)


@pytest.fixture
def claude(server: LiveServer) -> Iterator[Any]:
    """Anthropic's official SDK, pointed at `server`."""
    import anthropic

    with anthropic.Anthropic(
        base_url=server.url(""), api_key="none", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def make_server(
    served: ServedModel, session_script: Script
) -> Iterator[Callable[..., LiveServer]]:
    """Start a server with these settings; stopped at the end of the test."""
    from mlx_gen.server.app import create_app

    started: list[LiveServer] = []

    def make(served_model: ServedModel = served, **overrides: Any) -> LiveServer:
        app = create_app(
            settings_for(**overrides), served_model, request_hook=session_script
        )
        started.append(LiveServer(app).start())
        return started[-1]

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def one_slot_server(
    tiny_model_path: Path,
    served: ServedModel,
    script: Script,
    tiny_tokenizer: Any,
    make_server: Callable[..., LiveServer],
) -> Iterator[LiveServer]:
    """A server whose engine runs one request and queues one: a third waits
    in no queue. Its requests say "la" until their budget runs out."""
    import dataclasses

    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import load_engine

    engine = load_engine(tiny_model_path, EngineConfig(max_batch_size=1, max_queue=1))
    try:
        script.ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>la")
        yield make_server(dataclasses.replace(served, engine=engine))
    finally:
        engine.shutdown()
