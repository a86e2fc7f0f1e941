"""Engines over the tiny model, shut down after each test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlx_gen.engine import EngineConfig, LLMEngine


@pytest.fixture
def make_engine(tiny_model) -> Callable[..., LLMEngine]:
    """Start an engine on the tiny model. By default: no prefix cache, no
    headroom, and no default stop ids (a random model would stop anywhere)."""
    engines: list[LLMEngine] = []

    def make(**overrides) -> LLMEngine:
        settings = {
            "prefix_cache_bytes": 0,
            "headroom_bytes": 0,
            "default_stop_token_ids": [],
            "prefill_step_size": 16,
            **overrides,
        }
        engine = LLMEngine(*tiny_model, EngineConfig(**settings))
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown()


@pytest.fixture
def tokenizer(tiny_model):
    return tiny_model[1]
