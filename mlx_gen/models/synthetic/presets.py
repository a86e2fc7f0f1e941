"""Random-weight models of real architectures, built offline and deterministically.

Every model in tests and benchmarks comes from here: no model hub is needed.
A preset is a GPT-OSS configuration; `ensure_model` writes an ordinary model
directory (config.json, model.safetensors, tokenizer files) that
`mlx_lm.load` reads, built once per (preset, seed) and cached.

The tokenizer is a byte-level BPE trained on a small bundled corpus padded with
seeded pseudo-words, so that it reaches exactly the preset's vocabulary size.
It carries the harmony special tokens at ids of its own: callers must always
look them up by string. A preset with the `o200k_harmony` vocabulary has
GPT-OSS's real tokenizer instead (o200k.py), real ids included.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

# Bump when the bytes a preset produces change, so stale caches are rebuilt.
FORMAT_VERSION = 1

HARMONY_SPECIAL_TOKENS = [
    "<|startoftext|>",
    "<|endoftext|>",
    "<|return|>",
    "<|constrain|>",
    "<|channel|>",
    "<|start|>",
    "<|end|>",
    "<|message|>",
    "<|call|>",
]


@dataclass(frozen=True)
class Preset:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_local_experts: int
    num_experts_per_tok: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    sliding_window: int
    vocab_size: int
    # "trained": a small BPE of the preset's size; "o200k_harmony": GPT-OSS's own.
    vocabulary: Literal["trained", "o200k_harmony"] = "trained"
    max_position_embeddings: int = 131072
    rope_scaling: dict[str, Any] = field(
        default_factory=lambda: {
            "rope_type": "yarn",
            "factor": 32.0,
            "original_max_position_embeddings": 4096,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "truncate": False,
        }
    )

    def config(self) -> dict[str, Any]:
        layer_types = [
            "sliding_attention" if i % 2 == 0 else "full_attention"
            for i in range(self.num_hidden_layers)
        ]
        fields = asdict(self)
        del fields["vocabulary"]
        return {
            "model_type": "gpt_oss",
            "architectures": ["GptOssForCausalLM"],
            **fields,
            # Explicit: mlx-lm drops a layer of an odd count without it.
            "layer_types": layer_types,
            "rope_theta": 150000,
            "rms_norm_eps": 1e-5,
            "torch_dtype": "float32",
            "tie_word_embeddings": False,
        }


PRESETS: dict[str, Preset] = {
    # About 1 MB: unit and end-to-end tests.
    "tiny": Preset(
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=32,
        vocab_size=1024,
    ),
    # The benchmark model of BENCHMARKING.md, exactly.
    "bench": Preset(
        hidden_size=512,
        intermediate_size=512,
        num_hidden_layers=4,
        num_local_experts=8,
        num_experts_per_tok=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
        sliding_window=128,
        vocab_size=8192,
    ),
    # GPT-OSS's real tokenizer and ids on a tiny model: about 26 MB, nearly
    # all of it the two 201,088-row embedding matrices.
    "tiny-o200k": Preset(
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        sliding_window=32,
        vocab_size=201088,
        vocabulary="o200k_harmony",
    ),
}


def default_cache_dir() -> Path:
    from mlx_gen.settings import default_cache_dir as settings_cache_dir

    return settings_cache_dir() / "synthetic"


def model_dir(preset: str, cache_dir: Path | None = None, seed: int = 0) -> Path:
    """Where `ensure_model` keeps `preset` (built there or not yet)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache_dir / f"{preset}-seed{seed}-v{FORMAT_VERSION}"


def ensure_model(preset: str, cache_dir: Path | None = None, seed: int = 0) -> Path:
    """The directory of `preset` built from `seed`, building it on first use."""
    if preset not in PRESETS and preset not in LARGE_PRESETS:
        known = ", ".join(sorted([*PRESETS, *LARGE_PRESETS]))
        raise KeyError(f"unknown synthetic preset {preset!r} (known: {known})")
    target = model_dir(preset, cache_dir, seed)
    cache_dir = target.parent
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a crash never leaves half a model.
    staging = Path(tempfile.mkdtemp(prefix=f".{preset}-", dir=cache_dir))
    try:
        build_model(preset, staging, seed)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise  # not a concurrent builder that won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_model(preset: str, out_dir: Path, seed: int = 0) -> Path:
    if preset in LARGE_PRESETS:
        return LARGE_PRESETS[preset](out_dir, seed)
    spec = PRESETS[preset]
    out_dir.mkdir(parents=True, exist_ok=True)
    config = spec.config()
    _write_weights(config, out_dir, seed)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    if spec.vocabulary == "o200k_harmony":
        from mlx_gen.models.synthetic.o200k import o200k_harmony_tokenizer

        _save_tokenizer(o200k_harmony_tokenizer(), out_dir)
    else:
        write_tokenizer(out_dir, spec.vocab_size, seed)
    return out_dir


def _write_weights(config: dict[str, Any], out_dir: Path, seed: int) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import gpt_oss

    mx.random.seed(seed)
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    # Random sinks: zeros would leave the attention-sink path untested.
    for name, value in weights.items():
        if name.endswith("sinks"):
            weights[name] = mx.random.normal(value.shape) * 0.5
    mx.save_safetensors(
        str(out_dir / "model.safetensors"), weights, metadata={"format": "mlx"}
    )


def training_text(seed: int, n_words: int) -> list[str]:
    """The bundled corpus followed by seeded pseudo-words, in lines."""
    corpus = resources.files("mlx_gen").joinpath("data/corpus.txt").read_text()
    rng = random.Random(seed)
    onsets = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s"]
    onsets += ["t", "v", "w", "st", "tr", "ch", "sh", "pl", "gr", "th"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ee", "ea"]
    codas = ["", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "ck"]
    words = []
    for _ in range(n_words):
        syllables = rng.randint(1, 4)
        words.append(
            "".join(
                rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                for _ in range(syllables)
            )
        )
    lines = corpus.splitlines()
    lines += [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return lines


def write_tokenizer(out_dir: Path, vocab_size: int, seed: int = 0) -> None:
    """A byte-level BPE with the harmony special tokens, exactly `vocab_size` ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    room = vocab_size - len(HARMONY_SPECIAL_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=room,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=2,
    )
    tokenizer.train_from_iterator(training_text(seed, n_words=vocab_size * 8), trainer)
    specials = list(HARMONY_SPECIAL_TOKENS)
    # Fill any ids the corpus could not earn with reserved tokens, as o200k does.
    reserved = 0
    while tokenizer.get_vocab_size() + len(specials) < vocab_size:
        specials.append(f"<|reserved_{reserved}|>")
        reserved += 1
    tokenizer.add_special_tokens(specials)
    assert tokenizer.get_vocab_size() == vocab_size
    _save_tokenizer(tokenizer, out_dir)


def _save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    """tokenizer.json, its config, and the harmony stop ids as generation eos."""
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|startoftext|>",
        "eos_token": "<|return|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 131072,
        "clean_up_tokenization_spaces": False,
    }
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2)
    )
    stop_ids = [tokenizer.token_to_id(t) for t in ("<|return|>", "<|call|>")]
    (out_dir / "generation_config.json").write_text(
        json.dumps({"eos_token_id": stop_ids}, indent=2)
    )


# The full-size shape: never built in float, but written straight as MXFP4-Q8.
GPT_OSS_20B = Preset(
    hidden_size=2880,
    intermediate_size=2880,
    num_hidden_layers=24,
    num_local_experts=32,
    num_experts_per_tok=4,
    num_attention_heads=64,
    num_key_value_heads=8,
    head_dim=64,
    sliding_window=128,
    vocab_size=201088,
)


def build_mxfp4_q8(
    out_dir: Path, seed: int, preset: Preset, shard_bytes: int | None = None
) -> Path:
    """`preset` as an MXFP4-Q8 model directory of random weights (mxfp4_q8.py)."""
    # Imported on use: the full-size writer is rarely needed.
    from mlx_gen.models.synthetic.mxfp4_q8 import write_weights

    out_dir.mkdir(parents=True, exist_ok=True)
    # The tokenizer first: its training is the peak of the build's memory,
    # and the weights add little on top afterwards.
    write_tokenizer(out_dir, preset.vocab_size, seed)
    return write_weights(out_dir, seed, preset.config(), shard_bytes)


def _gpt_oss_20b(out_dir: Path, seed: int) -> Path:
    return build_mxfp4_q8(out_dir, seed, GPT_OSS_20B)


LARGE_PRESETS: dict[str, Any] = {"gpt-oss-20b": _gpt_oss_20b}
