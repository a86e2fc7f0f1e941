"""Loading by name or directory, the CPU dtype rule, and every load error."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from mlx_lm.tokenizer_utils import TokenizerWrapper

from mlx_gen.errors import ModelLoadError
from mlx_gen.models.loading import load_model, load_tokenizer
from mlx_gen.settings import Settings

on_cpu = pytest.mark.skipif(
    mx.default_device().type != mx.DeviceType.cpu,
    reason="the float32 rule is for the CPU backend",
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlx-gen-cache")


def settings_for(cache_dir: Path, registry_file: Path | None = None) -> Settings:
    return Settings(cache_dir=cache_dir, registry_file=registry_file)


@pytest.fixture
def model_copy(tmp_path: Path, tiny_model_path: Path) -> Path:
    """A private copy of the tiny model, free to be damaged."""
    return Path(shutil.copytree(tiny_model_path, tmp_path / "my-gpt"))


def logits_of(model, n: int = 5) -> mx.array:
    return model(mx.array([list(range(1, n + 1))]))


def test_registered_synthetic_model_is_built_on_first_use(cache_dir: Path):
    loaded = load_model("demo", settings_for(cache_dir))
    assert loaded.name == "demo"
    assert loaded.path.parent == cache_dir / "synthetic"
    assert (loaded.path / "model.safetensors").is_file()
    assert loaded.entry.source == "synthetic:tiny"
    assert loaded.config["model_type"] == "gpt_oss"
    assert isinstance(loaded.tokenizer, TokenizerWrapper)
    assert loaded.tokenizer.encode("<|start|>", add_special_tokens=False) == [
        loaded.tokenizer.convert_tokens_to_ids("<|start|>")
    ]
    assert logits_of(loaded.model).shape == (1, 5, loaded.config["vocab_size"])


def test_directory_is_served_under_its_name(cache_dir: Path, model_copy: Path):
    loaded = load_model(str(model_copy), settings_for(cache_dir))
    assert loaded.name == "my-gpt"
    assert loaded.path == model_copy
    assert loaded.entry.source == str(model_copy.resolve())
    assert loaded.entry.quantization == "float32"
    assert loaded.entry.context_length == 131072  # the config's own


def test_registry_entry_naming_a_local_directory(cache_dir: Path, model_copy: Path):
    registry = model_copy.parent / "models.toml"
    registry.write_text(
        '[models.house]\nsource = "./my-gpt"\nquantization = "float32"\n'
        'context_length = 2048\nreasoning_effort = "low"\n'
    )
    loaded = load_model("house", settings_for(cache_dir, registry))
    assert (loaded.name, loaded.path) == ("house", model_copy.resolve())
    assert loaded.entry.reasoning_effort == "low"


def test_load_tokenizer_only(cache_dir: Path):
    tokenizer = load_tokenizer("demo", settings_for(cache_dir))
    assert isinstance(tokenizer, TokenizerWrapper)
    assert tokenizer.decode(tokenizer.encode("hello", add_special_tokens=False)) == (
        "hello"
    )


def converted(source: Path, out: Path, **options) -> Path:
    from mlx_lm import convert

    convert(str(source), mlx_path=str(out), **options)
    return out


@on_cpu
def test_bfloat16_checkpoint_runs_as_float32_on_cpu(
    cache_dir: Path, tmp_path: Path, tiny_model_path: Path
):
    path = converted(tiny_model_path, tmp_path / "bf16", dtype="bfloat16")
    saved = mx.load(str(path / "model.safetensors"))
    assert {v.dtype for v in saved.values()} == {mx.bfloat16}

    loaded = load_model(str(path), settings_for(cache_dir))

    dtypes = {v.dtype for _, v in tree_flatten(loaded.model.parameters())}
    assert dtypes == {mx.float32}
    # The MoE layers run: in bfloat16 GatherMM fails on this backend.
    assert logits_of(loaded.model).dtype == mx.float32


@on_cpu
def test_quantized_weights_are_kept_and_scales_cast(
    cache_dir: Path, tmp_path: Path, tiny_model_path: Path
):
    path = converted(
        tiny_model_path,
        tmp_path / "q4",
        quantize=True,
        q_bits=4,
        q_group_size=32,
        dtype="bfloat16",
    )
    saved = mx.load(str(path / "model.safetensors"))

    loaded = load_model(str(path), settings_for(cache_dir))

    params = dict(tree_flatten(loaded.model.parameters()))
    packed = [k for k, v in params.items() if v.dtype == mx.uint32]
    assert "model.layers.0.self_attn.q_proj.weight" in packed
    for key in packed:
        assert mx.array_equal(params[key], saved[key]), key
    floats = {v.dtype for v in params.values() if mx.issubdtype(v.dtype, mx.floating)}
    assert floats == {mx.float32}
    assert loaded.entry.quantization == "4bit"
    assert logits_of(loaded.model).shape[-1] == loaded.config["vocab_size"]


def load_error(name: str, settings: Settings) -> str:
    with pytest.raises(ModelLoadError) as exc:
        load_model(name, settings)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_unknown_name_lists_the_known_ones(cache_dir: Path):
    message = load_error("gpt-5", settings_for(cache_dir))
    assert "unknown model 'gpt-5'" in message
    for known in ("demo", "bench", "gpt-oss-20b", "gpt-oss-20b-4bit"):
        assert known in message


def test_missing_directory(cache_dir: Path, tmp_path: Path):
    message = load_error(str(tmp_path / "nothing-here"), settings_for(cache_dir))
    assert message == f"model directory not found: {tmp_path / 'nothing-here'}"


def test_unregistered_hub_id_says_how_to_serve_it(cache_dir: Path):
    message = load_error("some-org/some-model", settings_for(cache_dir))
    assert message.startswith("model directory not found: some-org/some-model")
    assert "registry file" in message


def test_registry_entry_whose_directory_is_missing(cache_dir: Path, tmp_path: Path):
    registry = tmp_path / "models.toml"
    registry.write_text(
        '[models.gone]\nsource = "./gone"\nquantization = "4bit"\ncontext_length = 64\n'
    )
    message = load_error("gone", settings_for(cache_dir, registry))
    assert "directory not found" in message
    assert str(tmp_path / "gone") in message


def test_bad_registry_file_is_a_load_error(cache_dir: Path, tmp_path: Path):
    registry = tmp_path / "models.toml"
    registry.write_text("[models.x]\nsource = 3\n")
    assert "models.x.source" in load_error("demo", settings_for(cache_dir, registry))


def test_synthetic_cache_that_cannot_be_written(tmp_path: Path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    message = load_error("demo", settings_for(blocked))
    assert message.startswith(f"cannot build demo in {blocked}")


def test_unknown_synthetic_preset(cache_dir: Path, tmp_path: Path):
    registry = tmp_path / "models.toml"
    registry.write_text(
        '[models.big]\nsource = "synthetic:huge"\nquantization = "q"\n'
        "context_length = 64\n"
    )
    message = load_error("big", settings_for(cache_dir, registry))
    assert "unknown synthetic preset 'huge'" in message


def truncate_weights(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def garble_header(path: Path) -> None:
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:40] = b"#" * 32
    weights.write_bytes(bytes(data))


def set_config(**changes: object) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        config = json.loads((path / "config.json").read_text())
        config.update(changes)
        (path / "config.json").write_text(json.dumps(config))

    return change


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (truncate_weights, "is truncated ("),
        (garble_header, "is corrupt"),
        (
            lambda p: (p / "model.safetensors").write_bytes(b"abc"),
            "is truncated or not",
        ),
        (lambda p: (p / "model.safetensors").unlink(), "no weights in"),
        (lambda p: (p / "config.json").unlink(), "it has no config.json"),
        (lambda p: (p / "config.json").write_text("{oops"), "is not valid JSON"),
        (set_config(model_type="llama9000"), "unsupported architecture 'llama9000'"),
        (set_config(model_type=None), "does not name a model_type"),
        # Weights of another shape: mlx-lm's strict load says which.
        (set_config(hidden_size=128), "cannot load my-gpt from"),
    ],
    ids=[
        "truncated",
        "corrupt",
        "not-safetensors",
        "no-weights",
        "no-config",
        "bad-json",
        "unsupported",
        "no-model-type",
        "wrong-shapes",
    ],
)
def test_damaged_model_directory(
    cache_dir: Path, model_copy: Path, damage: Callable[[Path], None], expected: str
):
    damage(model_copy)
    assert expected in load_error(str(model_copy), settings_for(cache_dir))
