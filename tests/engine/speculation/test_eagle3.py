"""EAGLE-3 heads: the same outputs with a head proposing and without, what
the head proposes, and heads that do not fit refused at start.

The head is random (mlx_gen/models/synthetic/eagle3.py): it is rarely
right, so these tests check exactness and the head's bookkeeping, not
acceptance.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from mlx_lm.models.cache import KVCache, make_prompt_cache

from mlx_gen.engine.speculation.eagle3_head import load_head
from mlx_gen.engine.types import GenerationRequest, SamplingParams, SpeculationError
from mlx_gen.models.synthetic.eagle3 import build_eagle3_head
from tests.engine.helpers import collect, run


@pytest.fixture(scope="module")
def head_path(tiny_model_path: Path, tmp_path_factory) -> Path:
    return build_eagle3_head(tiny_model_path, tmp_path_factory.mktemp("eagle3"))


def _speculative(head: Path) -> dict:
    return {"speculative": f"eagle3:{head}", "speculative_max_batch": 64}


def _requests(count: int, seed: int, **sampling) -> list[GenerationRequest]:
    rng = random.Random(seed)
    return [
        GenerationRequest(
            [rng.randrange(10, 1000) for _ in range(rng.randint(1, 60))],
            SamplingParams(max_tokens=rng.randint(1, 120), **sampling),
        )
        for _ in range(count)
    ]


def _outputs(engine, requests: list[GenerationRequest]) -> list[list[int]]:
    async def together():
        return await asyncio.gather(*(collect(engine, r) for r in requests))

    return [r.tokens[0] for r in run(together())]


def test_greedy_outputs_identical_with_and_without_a_head(make_engine, head_path):
    plain = _outputs(make_engine(), _requests(16, seed=1, temperature=0.0))
    engine = make_engine(**_speculative(head_path))
    fast = _outputs(engine, _requests(16, seed=1, temperature=0.0))
    assert fast == plain
    assert max(len(t) for t in plain) > 2 * 32  # past the sliding window
    assert engine.stats().speculation.proposed > 100


def test_greedy_outputs_identical_with_prefix_hits_and_several_choices(
    make_engine, head_path
):
    """Prompts restored from the prefix cache skip their cached positions,
    and a request's choices each copy the prompt's head cache."""
    shared = [random.Random(4).randrange(10, 1000) for _ in range(40)]

    def requests() -> list[GenerationRequest]:
        return [
            GenerationRequest(
                shared + tail, SamplingParams(max_tokens=80, n=n, temperature=0.0)
            )
            for tail, n in (([], 1), ([11, 12], 2), ([13], 1))
        ]

    settings = {"prefix_cache_bytes": 1 << 24}
    plain_engine = make_engine(**settings)
    plain = [run(collect(plain_engine, r)).tokens for r in requests()]
    engine = make_engine(**settings, **_speculative(head_path))
    fast = [run(collect(engine, r)) for r in requests()]
    assert [r.tokens for r in fast] == plain
    assert all(r.final[0].usage.cached_tokens > 0 for r in fast[1:])
    assert engine.stats().speculation.proposed > 0


def test_seeded_sampling_writes_the_same_tokens_with_a_head(make_engine, head_path):
    def requests() -> list[GenerationRequest]:
        made = _requests(8, seed=2, temperature=0.7)
        for i, request in enumerate(made):
            request.sampling.seed = 50 + i
        return made

    plain = _outputs(make_engine(), requests())
    engine = make_engine(**_speculative(head_path))
    assert _outputs(engine, requests()) == plain
    assert engine.stats().speculation.proposed > 0


@pytest.mark.parametrize("lengths", [[45], [45, 40, 36]])
def test_the_head_proposes_what_it_reads_from_the_whole_text(
    make_engine, head_path, tiny_model, lengths
):
    """Each proposal equals the head's drafts computed from scratch: the
    target's states over the row's whole text, read by the head at once.
    So the states kept across prefill chunks, decode steps and verification
    steps (kept positions only) are the right ones, in order; prompts sent
    together are prefilled in one pass, padded, each read as its own row."""
    # A budget that lets the prompts of one submission share a pass.
    engine = make_engine(**_speculative(head_path), prefill_step_size=256)
    proposer = engine._worker._runner.speculator.proposer
    seen: list[tuple[list[int], list[int]]] = []
    propose = proposer.propose

    def recording(seq, k):
        drafts = propose(seq, k)
        seen.append((seq.request.prompt_token_ids + seq.output, drafts))
        return drafts

    proposer.propose = recording
    rng = random.Random(3)
    sampling = SamplingParams(max_tokens=90, temperature=0.0)
    requests = [
        GenerationRequest([rng.randrange(10, 1000) for _ in range(n)], sampling)
        for n in lengths
    ]

    async def together():  # one submission: prefilled in one pass
        async for _ in engine.submit_many(requests):
            pass

    run(together())
    assert len(seen) > 10 * len(lengths)
    model = tiny_model[0]
    for text, drafts in seen:
        assert drafts == _drafts_from_scratch(proposer, model, text, len(drafts))


def _drafts_from_scratch(proposer, model, text: list[int], k: int) -> list[int]:
    model(mx.array(text[:-1])[None], cache=make_prompt_cache(model))
    states = proposer._fused()
    embed, head, cache = proposer._embed, proposer.head, KVCache()
    head.step(embed(mx.array(text[1:-1]))[None], states[:, :-1], cache)
    token, hidden, drafts = mx.array([text[-1]]), states[:, -1:], []
    for _ in range(k):
        hidden = head.step(embed(token)[None], hidden, cache)
        token = proposer._d2t[mx.argmax(head.logits(hidden[:, -1]), axis=-1)]
        drafts.append(int(token.item()))
    return drafts


def test_the_head_reads_the_inputs_of_the_target_layers_it_names(
    make_engine, head_path, tiny_model
):
    """The synthetic head names ids 0, 1 and 2 of the 2-layer model: the
    embedding, layer 1's input and the last layer's output."""
    engine = make_engine(**_speculative(head_path))
    proposer = engine._worker._runner.speculator.proposer
    model, tokens = tiny_model[0], mx.array([[5, 6, 7, 8]])
    logits = model(tokens)
    low, _, high = mx.split(proposer._fused(), 3, axis=-1)
    assert mx.allclose(low, model.model.embed_tokens(tokens)).item()
    last = model.lm_head(model.model.norm(high))
    assert mx.allclose(last, logits, atol=1e-5).item()


def test_the_memory_plan_counts_the_heads_weights(make_engine, head_path):
    plain = make_engine().plan.weights_bytes
    engine = make_engine(**_speculative(head_path))
    weights = mx.load(str(head_path / "model.safetensors"))
    # All but t2d, which is not loaded.
    nbytes = sum(v.nbytes for k, v in weights.items() if k != "t2d")
    assert engine.plan.weights_bytes == plain + nbytes
    proposer = engine._worker._runner.speculator.proposer
    assert (
        proposer.weights_bytes
        == sum(v.nbytes for _, v in tree_flatten(proposer.head.parameters()))
        + weights["d2t"].nbytes
    )


def test_the_speculators_layout_loads_as_the_same_head(head_path, tmp_path):
    """vLLM's speculators format: the layer's settings nested, `layers.0.`."""
    settings = json.loads((head_path / "config.json").read_text())
    nested = {
        "speculators_model_type": "eagle3",
        "draft_vocab_size": settings.pop("draft_vocab_size"),
        "eagle_aux_hidden_state_layer_ids": settings.pop(
            "eagle_aux_hidden_state_layer_ids"
        ),
        "transformer_layer_config": settings,
    }
    (tmp_path / "config.json").write_text(json.dumps(nested))
    weights = mx.load(str(head_path / "model.safetensors"))
    renamed = {k.replace("midlayer.", "layers.0."): v for k, v in weights.items()}
    mx.save_safetensors(str(tmp_path / "model.safetensors"), renamed)
    ours, theirs = load_head(head_path, 64, 1024), load_head(tmp_path, 64, 1024)
    assert ours.head.config == theirs.head.config
    assert theirs.head.config.aux_layer_ids == (0, 1, 2)
    mine = dict(tree_flatten(ours.head.parameters()))
    for name, value in tree_flatten(theirs.head.parameters()):
        assert mx.array_equal(value, mine[name]).item()
    assert mx.array_equal(ours.draft_to_target, theirs.draft_to_target).item()


def test_specforge_layer_ids_name_layer_outputs(head_path, tmp_path):
    """SpecForge (and SGLang) number the states by the layer that writes
    them, vLLM by the layer that reads them: id j there is j + 1 here."""
    settings = json.loads((head_path / "config.json").read_text())
    del settings["eagle_aux_hidden_state_layer_ids"]
    settings["eagle_config"] = {"eagle_aux_hidden_state_layer_ids": [0, 1, 1]}
    (tmp_path / "config.json").write_text(json.dumps(settings))
    (tmp_path / "model.safetensors").symlink_to(head_path / "model.safetensors")
    assert load_head(tmp_path, 64, 1024).head.config.aux_layer_ids == (1, 2, 2)
    del settings["eagle_config"]  # none: vLLM's default, 2, L // 2, L - 3
    (tmp_path / "config.json").write_text(json.dumps(settings))
    with pytest.raises(SpeculationError, match=r"layers \[2, 1, -1\]"):
        load_head(tmp_path, 64, 1024).head.config.aux_layers(2)


def _broken_copy(head: Path, out: Path, config=None, drop=None) -> Path:
    out.mkdir()
    settings = json.loads((head / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**settings, **(config or {})}))
    weights = mx.load(str(head / "model.safetensors"))
    weights.pop(drop, None)
    mx.save_safetensors(str(out / "model.safetensors"), weights)
    return out


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (dict(drop="midlayer.self_attn.q_proj.weight"), "weights do not fit"),
        (dict(drop="d2t"), "no d2t"),
        (dict(config={"hidden_size": 32}), "size 32: the served model.s are 64"),
        (dict(config={"target_hidden_size": 128}), "size 128: the served"),
        (dict(config={"vocab_size": 2048}), "vocabulary of 2048"),
        (
            dict(config={"eagle_aux_hidden_state_layer_ids": [0, 1, 9]}),
            "needs 3 ids",
        ),
        (dict(config={"intermediate_size": 7}), "weights do not fit"),
    ],
)
def test_a_head_that_does_not_fit_is_refused(
    make_engine, head_path, tmp_path, broken, message
):
    bad = _broken_copy(head_path, tmp_path / "bad", **broken)
    with pytest.raises(SpeculationError, match=message):
        make_engine(**_speculative(bad))


def test_a_directory_without_a_head_is_refused(make_engine, tmp_path):
    with pytest.raises(SpeculationError, match=r"no config\.json"):
        make_engine(**_speculative(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SpeculationError, match="lacks"):
        make_engine(**_speculative(tmp_path))
