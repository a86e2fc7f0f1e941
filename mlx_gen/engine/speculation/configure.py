"""The speculator an engine's configuration asks for."""

from __future__ import annotations

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.speculation.ngram import PromptLookup
from mlx_gen.engine.speculation.proposers import Proposer
from mlx_gen.engine.speculation.speculator import Speculator


def make_speculator(config: EngineConfig) -> Speculator | None:
    """None when `config.speculative` is None; a ValueError naming what is
    wrong for a method that is not known."""
    method = config.speculative
    if method is None:
        return None
    proposer: Proposer
    if method == "ngram":
        proposer = PromptLookup()
    else:
        raise ValueError(
            f"unknown speculative method {method!r}: "
            "use ngram, draft:PATH or eagle3:PATH"
        )
    return Speculator(
        proposer, config.num_speculative_tokens, config.speculative_max_batch
    )
