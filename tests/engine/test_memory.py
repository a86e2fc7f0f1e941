"""The memory plan: measured, honest about prefill, refused with the numbers."""

from __future__ import annotations

import os
from dataclasses import replace

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from mlx_lm.models import gpt_oss

from mlx_gen.engine import EngineConfig, LLMEngine
from mlx_gen.engine.memory import (
    Device,
    detect_device,
    measure_model,
    plan_memory,
    prefill_transient,
)
from mlx_gen.engine.prompt_scores import logit_bytes_per_token
from mlx_gen.engine.types import ModelTooLarge
from mlx_gen.settings import Settings
from mlx_gen.units import GB


def gpt_oss_20b_layout(**small) -> gpt_oss.Model:
    """GPT-OSS-20B's attention layout (24 layers, 8 KV heads of 64, window 128)
    with everything else shrunk."""
    args = gpt_oss.ModelArgs(
        num_hidden_layers=24,
        num_local_experts=2,
        num_experts_per_tok=1,
        vocab_size=64,
        hidden_size=64,
        intermediate_size=64,
        head_dim=64,
        num_attention_heads=64,
        num_key_value_heads=8,
        sliding_window=128,
        **small,
    )
    model = gpt_oss.Model(args)
    mx.eval(model.parameters())
    return model


def test_kv_bytes_come_from_the_full_attention_layers_only():
    shape = measure_model(gpt_oss_20b_layout())
    per_layer = 2 * 8 * 64 * 4  # keys and values, float32
    assert shape.full_layers == 12
    assert shape.kv_bytes_per_token == 12 * per_layer
    assert shape.fixed_bytes_per_sequence == 12 * 128 * per_layer
    assert shape.n_heads == 64
    # The measurement: 2,048 queries over 8,192 keys took 12.1 GiB.
    assert 12 * 2**30 <= prefill_transient(shape, 2048, 8192) <= 12.5 * 2**30


def test_the_tiny_model_plan(tiny_model):
    model, tokenizer = tiny_model
    shape = measure_model(model, tokenizer)
    weights = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    assert (shape.weights_bytes, shape.kv_bytes_per_token) == (weights, 256)
    assert shape.max_position == tokenizer.model_max_length
    config = EngineConfig(
        memory_budget_bytes=64 << 20, headroom_bytes=1 << 20, prefix_cache_bytes=4 << 20
    )
    memory = plan_memory(shape, config, detect_device())
    plan = memory.plan
    used = (
        plan.weights_bytes
        + plan.headroom_bytes
        + plan.prefix_cache_bytes
        + plan.transient_bytes
        + plan.kv_token_budget * plan.kv_bytes_per_token
    )
    assert plan.budget_bytes == 64 << 20 and used <= plan.budget_bytes
    # Prefill chunks shrink as the context grows, keeping their transient inside.
    sizes = [memory.chunk_size(p) for p in (0, 1000, 10_000, 100_000)]
    assert sizes[0] == config.prefill_step_size
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]
    for position, size in zip((0, 1000, 10_000, 100_000), sizes, strict=True):
        transient = prefill_transient(shape, size, position + size)
        assert transient <= memory.prefill_reserve
    # A scored chunk's logits are part of its transient: scored chunks are shorter.
    scored = [memory.chunk_size(p, scoring=True) for p in (0, 1000, 10_000, 100_000)]
    assert all(s <= u for s, u in zip(scored, sizes, strict=True))
    for position, size in zip((0, 1000, 10_000, 100_000), scored, strict=True):
        transient = prefill_transient(shape, size, position + size)
        transient += size * logit_bytes_per_token(shape.vocab_size)
        assert transient <= memory.prefill_reserve


def test_the_device_is_total_ram_without_metal():
    device = detect_device()
    if mx.metal.is_available():
        pytest.skip("Metal reports its own working set")
    assert device.metal is False
    assert device.total_bytes == os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES"
    )
    assert device.recommended_bytes == device.total_bytes


def test_a_model_that_cannot_fit_is_refused_at_start_with_the_numbers(tiny_model):
    engine = LLMEngine(*tiny_model, EngineConfig(memory_budget_bytes=2 << 20))
    with pytest.raises(ModelTooLarge) as refused:
        engine.start()
    message = str(refused.value)
    assert "weights 1.03 MB" in message and "budget is 2.10 MB" in message
    assert "MLX_GEN_MEMORY_BUDGET_GB" in message
    assert engine.stats().alive is False


def test_config_from_settings():
    settings = Settings(memory_budget_gb=8, prefix_cache_gb=0.5, max_batch_size=16)
    config = EngineConfig.from_settings(settings)
    assert config.memory_budget_bytes == 8 * GB
    assert config.prefix_cache_bytes == GB // 2
    assert config.max_batch_size == 16
    assert EngineConfig.from_settings(Settings()).memory_budget_bytes is None


def test_the_buffer_cache_limit_is_restored_at_shutdown(make_engine):
    before = mx.set_cache_limit(123 << 20)
    try:
        engine = make_engine(memory_budget_bytes=4 << 20, max_batch_size=4)
        engine.shutdown()
    finally:
        restored = mx.set_cache_limit(before)
    assert restored == 123 << 20


def test_on_metal_a_model_beyond_the_working_set_names_the_sysctl():
    shape = measure_model(gpt_oss_20b_layout())
    heavy = replace(shape, weights_bytes=30 * GB)
    mac = Device(total_bytes=32 * GB, recommended_bytes=21 * GB, metal=True)
    config = EngineConfig(memory_budget_bytes=20 * GB)
    with pytest.raises(ModelTooLarge) as refused:
        plan_memory(heavy, config, mac)
    message = str(refused.value)
    assert "weights 30.00 GB" in message and "budget is 20.00 GB" in message
    mb = int(message.split("iogpu.wired_limit_mb=")[1].split("`")[0])
    assert mb * (1 << 20) > 31 * GB  # enough for the weights and the rest
    # A model that fits: a working set for the wired limit inside the device's.
    fits = plan_memory(replace(shape, weights_bytes=12 * GB), EngineConfig(), mac)
    assert fits.plan.budget_bytes == 16 * GB  # the cap, under 21 GB
    assert fits.plan.max_context >= 1024
