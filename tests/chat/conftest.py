"""Chat-format fixtures: the tiny harmony tokenizer; a ChatML one with a template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlx_gen.chat import HarmonyFormat, TemplateFormat, format_for
from mlx_gen.synthetic import training_text

GOLDEN_DATE = "2026-11-26"

# A ChatML-like template whose generation prompt opens a thinking block.
CHATML_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n# Tools\n"
    "{% for tool in tools %}{{ tool.function.name }}: "
    "{{ tool.function.description }}{{ '\\n' }}{% endfor %}<|im_end|>{{ '\\n' }}"
    "{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}{{ '\\n' }}"
    "{{ m.content }}<|im_end|>{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


@pytest.fixture(scope="session")
def harmony_tokenizer(tiny_model: tuple[Any, Any]) -> Any:
    return tiny_model[1]


@pytest.fixture(scope="session")
def harmony(harmony_tokenizer: Any) -> HarmonyFormat:
    chat_format = format_for(harmony_tokenizer, today=GOLDEN_DATE)
    assert isinstance(chat_format, HarmonyFormat)
    return chat_format


@pytest.fixture(scope="session")
def script(harmony_tokenizer: Any):
    """Ids of a harmony string as the model would emit it (control tokens as ids)."""

    def encode(text: str) -> list[int]:
        return harmony_tokenizer.encode(text, add_special_tokens=False)

    return encode


def write_chatml_tokenizer(
    out_dir: Path, template: str | None = CHATML_TEMPLATE
) -> Path:
    """A byte-level BPE with ChatML control tokens, `<think>` tags and `template`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_text(0, n_words=2000), trainer)
    tokenizer.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tokenizer.add_tokens(["<think>", "</think>"])
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|im_end|>",
        "clean_up_tokenization_spaces": False,
    }
    if template is not None:
        config["chat_template"] = template
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config))
    return out_dir


@pytest.fixture(scope="session")
def chatml_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlx_lm.tokenizer_utils import load

    return load(write_chatml_tokenizer(tmp_path_factory.mktemp("chatml")))


@pytest.fixture(scope="session")
def chatml(chatml_tokenizer: Any) -> TemplateFormat:
    chat_format = format_for(chatml_tokenizer)
    assert isinstance(chat_format, TemplateFormat)
    return chat_format
