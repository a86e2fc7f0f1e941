"""What a conversion costs: the converted model's KL divergence from its source.

Both models score the same tokens (quality_reference.py says how a text is cut
into chunks). Reported, over every scored position: the mean and the 99th
percentile of KL(source ‖ converted), how often both put the same token first
(top-1 agreement), and each model's perplexity on the text.

The two models are never in memory together. Pass 1 runs the source and keeps
its top-k record (quality_reference.Reference), then frees it; pass 2 runs the
converted model against that record. The tokens outside the source's top k are
one bucket on both sides: KL is exact over the top k, and the rest adds
P_rest · log(P_rest / Q_rest) with Q_rest the converted model's exact mass
outside the same k tokens. Merging outcomes never raises a KL divergence (the
log-sum inequality), so the figure is a lower bound that is exact when k is the
vocabulary size; `source_tail_mass` says how much probability the bucket held.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from mlx_gen.errors import QualityError
from mlx_gen.models.quality_reference import (
    Reference,
    chunk_logprobs,
    rest_logmass,
    score_reference,
    target_logprobs,
)

if TYPE_CHECKING:
    import mlx.nn as nn
    import numpy as np
    from mlx_lm.tokenizer_utils import TokenizerWrapper

DEFAULT_CHUNK = 512
DEFAULT_MAX_TOKENS = 4096

ModelLoader = Callable[[], "nn.Module"]


def default_text() -> str:
    """The bundled evaluation text: prose, code, figures and a few languages."""
    return resources.files("mlx_gen").joinpath("data/eval_text.txt").read_text("utf-8")


def evaluation_tokens(
    source: TokenizerWrapper,
    converted: TokenizerWrapper,
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> list[int]:
    """The first `max_tokens` tokens of `text`, once both tokenizers agree."""
    tokens = list(source.encode(text))
    if source.get_vocab() != converted.get_vocab() or tokens != list(
        converted.encode(text)
    ):
        raise QualityError(
            "the two models have different tokenizers: their predictions cannot"
            " be compared token by token"
        )
    tokens = tokens[:max_tokens]
    if len(tokens) < 2:
        raise QualityError(
            f"too few tokens to score ({len(tokens)}): at least 2 are needed"
        )
    return tokens


@dataclass(frozen=True)
class KLReport:
    tokens_scored: int
    chunks: int
    chunk: int
    top_k: int
    vocab_size: int
    kl_mean: float
    kl_p99: float
    kl_max: float
    top1_agreement: float
    source_perplexity: float
    converted_perplexity: float
    source_tail_mass: float  # mean probability outside the top k (0: exact)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    """Pass 2's figures at every scored position."""

    kl: np.ndarray
    same_top: np.ndarray
    target_logprobs: np.ndarray


def compare(
    model: nn.Module, tokens: Sequence[int], chunk: int, reference: Reference
) -> Comparison:
    """Pass 2: the converted model against the source's record, position by position."""
    import mlx.core as mx
    import numpy as np

    columns: list[list[np.ndarray]] = [[], [], []]
    done = 0
    for logprobs, targets in chunk_logprobs(model, tokens, chunk):
        if logprobs.shape[-1] != reference.vocab_size:
            raise QualityError(
                f"the converted model predicts {logprobs.shape[-1]} tokens,"
                f" the source {reference.vocab_size}"
            )
        rows = slice(done, done + logprobs.shape[0])
        done = rows.stop
        ids = mx.array(reference.top_ids[rows])
        p = mx.array(reference.top_logprobs[rows])
        p_rest = mx.array(reference.rest_logmass[rows])
        q = mx.take_along_axis(logprobs, ids, axis=-1)
        q_rest = rest_logmass(logprobs, ids)
        # A source that gives the rest no mass (k = vocabulary) adds nothing.
        tail = mx.where(
            p_rest > -mx.inf, mx.exp(p_rest) * (p_rest - q_rest), mx.array(0.0)
        )
        kl = (mx.exp(p) * (p - q)).sum(axis=-1) + tail
        same_top = mx.argmax(logprobs, axis=-1) == ids[:, 0]
        found = (kl, same_top, target_logprobs(logprobs, targets))
        mx.eval(*found)
        for column, value in zip(columns, found, strict=True):
            column.append(np.array(value))
    kl, same_top, target = (np.concatenate(column) for column in columns)
    return Comparison(kl, same_top, target)


def summarize(
    reference: Reference, comparison: Comparison, chunks: int, chunk: int
) -> KLReport:
    import numpy as np

    return KLReport(
        tokens_scored=reference.positions,
        chunks=chunks,
        chunk=chunk,
        top_k=reference.top_ids.shape[1],
        vocab_size=reference.vocab_size,
        kl_mean=float(comparison.kl.mean()),
        kl_p99=float(np.percentile(comparison.kl, 99)),
        kl_max=float(comparison.kl.max()),
        top1_agreement=float(comparison.same_top.mean()),
        source_perplexity=_perplexity(reference.target_logprobs),
        converted_perplexity=_perplexity(comparison.target_logprobs),
        source_tail_mass=float(np.exp(reference.rest_logmass).mean()),
    )


def _perplexity(logprobs: np.ndarray) -> float:
    import numpy as np

    return float(np.exp(-logprobs.astype(np.float64).mean()))


def free_memory() -> None:
    """Give back what a dropped model held, MLX's buffer cache included."""
    import mlx.core as mx

    gc.collect()
    mx.clear_cache()


def measure_kl(
    load_source: ModelLoader,
    load_converted: ModelLoader,
    tokens: Sequence[int],
    chunk: int = DEFAULT_CHUNK,
    top_k: int | None = None,
    on_stage: Callable[[str], None] = lambda _: None,
) -> KLReport:
    """Both passes, one model in memory at a time."""
    if chunk < 2:
        raise QualityError(f"a chunk must hold at least 2 tokens, not {chunk}")
    if top_k is not None and top_k < 1:
        raise QualityError(f"top-k must be at least 1, not {top_k}")
    on_stage("Scoring with the source")
    model = load_source()
    reference = score_reference(model, tokens, chunk, top_k)
    del model
    free_memory()
    on_stage("Scoring with the converted model")
    model = load_converted()
    comparison = compare(model, tokens, chunk, reference)
    del model
    free_memory()
    chunks = -(-(len(tokens) - 1) // chunk)
    return summarize(reference, comparison, chunks, chunk)
