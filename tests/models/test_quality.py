"""`mlx_gen.models.quality`: the KL divergence of converted tiny models from
their float32 source, on the bundled text, one model in memory at a time."""

from __future__ import annotations

import dataclasses
import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
from mlx_lm.models.cache import make_prompt_cache

from mlx_gen.errors import QualityError
from mlx_gen.models.conversion import convert
from mlx_gen.models.loading import load_model
from mlx_gen.models.quality import (
    KLReport,
    compare,
    default_text,
    evaluation_tokens,
    measure_kl,
)
from mlx_gen.models.quality_reference import chunk_logprobs, score_reference
from mlx_gen.models.quant_recipes import make_recipe
from mlx_gen.models.synthetic.presets import write_tokenizer
from mlx_gen.settings import Settings

RECIPES = {"affine-8": {"bits": 8}, "mxfp4-q8": {"recipe": "mxfp4-q8"}}
RECIPES["affine-4"] = {"bits": 4}


@pytest.fixture(scope="module")
def converted(tiny_model_path: Path, tmp_path_factory) -> dict[str, Path]:
    """The float32 tiny model in each recipe."""
    root = tmp_path_factory.mktemp("converted")
    return {
        name: convert(str(tiny_model_path), root / name, make_recipe(**options)).out_dir
        for name, options in RECIPES.items()
    }


@pytest.fixture(scope="module")
def tokens(tiny_model) -> list[int]:
    _, tokenizer = tiny_model
    return evaluation_tokens(tokenizer, tokenizer, default_text())


def _loader(path: Path):
    return lambda: load_model(str(path), Settings()).model


def _measure(source: Path, target: Path, tokens: list[int], **options) -> KLReport:
    return measure_kl(_loader(source), _loader(target), tokens, **options)


def test_a_model_against_itself_loses_nothing(tiny_model_path, tokens):
    report = _measure(tiny_model_path, tiny_model_path, tokens)
    assert report.kl_mean == pytest.approx(0.0, abs=1e-7)
    assert report.kl_p99 == pytest.approx(0.0, abs=1e-7)
    assert report.top1_agreement == 1.0
    assert report.converted_perplexity == report.source_perplexity
    # The bundled text fills 6 chunks; a chunk's first token is never predicted.
    assert len(tokens) > 5 * 512
    assert (report.chunks, report.chunk) == (6, 512)
    assert report.tokens_scored == len(tokens) - 6
    # Random weights predict about as well as chance over 1024 tokens.
    assert 500 < report.source_perplexity < 2000
    assert report.top_k == report.vocab_size == 1024
    assert report.source_tail_mass == 0.0


def test_eight_bits_cost_less_than_mxfp4_q8_and_four_bits(
    tiny_model_path, converted, tokens
):
    reports = {
        name: _measure(tiny_model_path, path, tokens[:1024])
        for name, path in converted.items()
    }
    kl = {name: report.kl_mean for name, report in reports.items()}
    assert 0 < kl["affine-8"] < kl["mxfp4-q8"] < kl["affine-4"], kl
    p99 = {name: report.kl_p99 for name, report in reports.items()}
    assert p99["affine-8"] < p99["mxfp4-q8"] < p99["affine-4"], p99
    agreement = {name: r.top1_agreement for name, r in reports.items()}
    assert agreement["affine-8"] > agreement["mxfp4-q8"] > agreement["affine-4"]
    assert agreement["affine-8"] > 0.9, agreement
    for report in reports.values():
        assert report.converted_perplexity != report.source_perplexity
        assert 0 < report.kl_p99 <= report.kl_max


def test_kl_is_from_the_source_to_the_converted_model(tiny_model, converted, tokens):
    """The exact record against KL(P ‖ Q) = Σ p (log p − log q), summed here
    from both models' full distributions: the direction matters."""
    source, _ = tiny_model
    quantized = _loader(converted["affine-4"])()
    text = tokens[:200]
    reference = score_reference(source, text, 512)
    found = compare(quantized, text, 512, reference).kl

    def full(model) -> np.ndarray:
        return np.concatenate(
            [np.array(lp) for lp, _ in chunk_logprobs(model, text, 512)]
        )

    p, q = full(source).astype(np.float64), full(quantized).astype(np.float64)
    expected = (np.exp(p) * (p - q)).sum(axis=1)
    reverse = (np.exp(q) * (q - p)).sum(axis=1)
    np.testing.assert_allclose(found, expected, rtol=1e-3, atol=1e-6)
    assert np.abs(found - reverse).max() > 10 * np.abs(found - expected).max()


class Sharpened:
    """A model whose logits are multiplied by `factor` (temperature 1/factor):
    peaked distributions, as a trained model's are, from random weights."""

    def __init__(self, model, factor: float) -> None:
        self.model, self.factor = model, factor

    def __call__(self, inputs, cache=None):
        return self.model(inputs, cache=cache) * self.factor

    def make_cache(self) -> list:
        return make_prompt_cache(self.model)


def test_a_top_k_record_is_a_lower_bound_close_to_the_exact_kl(
    tiny_model_path, converted, tokens
):
    def kl(factor: float, top_k: int) -> float:
        return measure_kl(
            lambda: Sharpened(_loader(tiny_model_path)(), factor),
            lambda: Sharpened(_loader(converted["affine-4"])(), factor),
            tokens[:1024],
            top_k=top_k,
        ).kl_mean

    # Random weights spread their probability nearly evenly: a top-k record
    # leaves most of it in the one bucket of the rest and under-reports.
    flat = [kl(1.0, k) for k in (16, 256, 1024)]
    assert flat == sorted(flat), flat
    assert flat[1] < 0.7 * flat[2]
    # Peaked, nearly all of it is in the top k: within 0.5% of exact.
    exact, approximate = kl(8.0, 1024), kl(8.0, 256)
    assert approximate == pytest.approx(exact, rel=0.005)
    assert approximate <= exact


def test_the_source_is_freed_before_the_converted_model_loads(
    tiny_model_path, converted, tokens
):
    sources: list[weakref.ref] = []
    source_alive_at_pass_2: list[bool] = []

    def load_source():
        model = _loader(tiny_model_path)()
        sources.append(weakref.ref(model))
        return model

    def load_converted():
        gc.collect()
        source_alive_at_pass_2.append(sources[0]() is not None)
        return _loader(converted["affine-8"])()

    measure_kl(load_source, load_converted, tokens[:100])
    assert source_alive_at_pass_2 == [False]


def test_different_tokenizers_are_refused(tiny_model, tmp_path):
    _, tokenizer = tiny_model
    write_tokenizer(tmp_path, 1024, seed=1)  # same size, other pseudo-words
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    other = load_tokenizer(tmp_path)
    with pytest.raises(QualityError, match="different tokenizers"):
        evaluation_tokens(tokenizer, other, default_text())
    with pytest.raises(QualityError, match=r"too few tokens to score \(0\)"):
        evaluation_tokens(tokenizer, tokenizer, "")
    with pytest.raises(QualityError, match=r"too few tokens to score \(1\)"):
        evaluation_tokens(tokenizer, tokenizer, default_text(), max_tokens=1)


def test_a_converted_model_of_another_vocabulary_is_refused(tiny_model, tokens):
    model, _ = tiny_model
    reference = score_reference(model, tokens[:40], 512, top_k=8)
    wider = dataclasses.replace(reference, vocab_size=2048)
    with pytest.raises(QualityError, match="predicts 1024 tokens, the source 2048"):
        compare(model, tokens[:40], 512, wider)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"chunk": 1}, "at least 2 tokens, not 1"), ({"top_k": 0}, "at least 1, not 0")],
)
def test_bad_options_are_refused_before_loading(options, message, tokens):
    def never() -> None:
        raise AssertionError("loaded a model")

    with pytest.raises(QualityError, match=message):
        measure_kl(never, never, tokens, **options)
