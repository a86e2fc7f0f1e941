"""The speculator an engine's configuration asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.speculation.ngram import PromptLookup
from mlx_gen.engine.speculation.proposers import Proposer
from mlx_gen.engine.speculation.speculator import Speculator
from mlx_gen.engine.types import SpeculationError
from mlx_gen.errors import ModelLoadError
from mlx_gen.models.registry import is_hub_id


def make_speculator(
    config: EngineConfig, tokenizer: Any, model: Any
) -> Speculator | None:
    """None when `config.speculative` is None; a SpeculationError saying
    what is wrong with a method that cannot be used."""
    method = config.speculative
    if method is None:
        return None
    kind, _, path = method.partition(":")
    proposer: Proposer
    if method == "ngram":
        proposer = PromptLookup()
    elif kind == "draft" and path:
        proposer = _draft(_directory(path, "draft model"), tokenizer)
    elif kind == "eagle3" and path:
        from mlx_gen.engine.speculation.eagle3 import load_eagle3

        proposer = load_eagle3(_directory(path, "eagle3 head"), model)
    else:
        raise SpeculationError(
            f"unknown speculative method {method!r}: "
            "use ngram, draft:PATH or eagle3:PATH"
        )
    return Speculator(
        proposer, config.num_speculative_tokens, config.speculative_max_batch
    )


def _directory(source: str, what: str) -> Path:
    """A proposer's weights: a local directory, or a hub repository
    (`owner/name`) taken from the hub cache or downloaded into it."""
    path = Path(source).expanduser()
    if path.is_dir() or not is_hub_id(source):
        return path
    from mlx_gen.models.hub import fetch_snapshot

    try:
        return fetch_snapshot(source)
    except ModelLoadError as exc:
        raise SpeculationError(f"the {what} {source!r}: {exc}") from None


def _draft(path: Path, tokenizer: Any) -> Proposer:
    """The draft model in the model directory `path`."""
    import mlx_lm

    from mlx_gen.engine.speculation.draft import DraftModel, check_vocabulary

    if not (path / "config.json").is_file():
        raise SpeculationError(
            f"the draft model {str(path)!r} is not a model directory"
        )
    model, draft_tokenizer = mlx_lm.load(str(path))[:2]
    check_vocabulary(draft_tokenizer, tokenizer)
    return DraftModel(model)
