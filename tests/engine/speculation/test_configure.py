"""Which speculator a configuration makes, and where its weights come from:
a directory, or a hub repository found in the hub cache (no network here)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from huggingface_hub import constants

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.speculation.configure import make_speculator
from mlx_gen.engine.speculation.eagle3 import Eagle3Proposer
from mlx_gen.engine.speculation.ngram import PromptLookup
from mlx_gen.engine.types import SpeculationError
from mlx_gen.models.synthetic.eagle3 import build_eagle3_head
from tests.models.test_hub import lay_out_hub_cache

HEAD_REPO = "test-org/tiny-eagle3"


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def _config(method: str | None) -> EngineConfig:
    return replace(EngineConfig(), speculative=method)


def test_no_method_no_speculator(tiny_model):
    model, tokenizer = tiny_model
    assert make_speculator(_config(None), tokenizer, model) is None
    speculator = make_speculator(_config("ngram"), tokenizer, model)
    assert isinstance(speculator.proposer, PromptLookup)


def test_an_eagle3_head_is_taken_from_the_hub_cache(
    tiny_model, tiny_model_path, tmp_path, offline_hub
):
    model, tokenizer = tiny_model
    head = build_eagle3_head(tiny_model_path, tmp_path / "head")
    lay_out_hub_cache(offline_hub, HEAD_REPO, head)
    speculator = make_speculator(_config(f"eagle3:{HEAD_REPO}"), tokenizer, model)
    assert isinstance(speculator.proposer, Eagle3Proposer)
    assert speculator.proposer.weights_bytes > 0


def test_a_hub_head_not_in_the_cache_is_refused_offline(tiny_model, offline_hub):
    model, tokenizer = tiny_model
    with pytest.raises(SpeculationError, match=r"test-org/absent.*HF_HUB_OFFLINE"):
        make_speculator(_config("eagle3:test-org/absent"), tokenizer, model)
    with pytest.raises(SpeculationError, match="draft model 'test-org/absent'"):
        make_speculator(_config("draft:test-org/absent"), tokenizer, model)


def test_an_unknown_method_is_refused(tiny_model):
    model, tokenizer = tiny_model
    with pytest.raises(SpeculationError, match="use ngram, draft:PATH or eagle3"):
        make_speculator(_config("medusa:x"), tokenizer, model)
