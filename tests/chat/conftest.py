"""Chat-format fixtures: harmony tokenizers (tiny, GPT-OSS's own), a ChatML one,
and openai-harmony as the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlx_gen.chat import HarmonyFormat, TemplateFormat, format_for
from mlx_gen.models.synthetic.presets import ensure_model

from .helpers import GOLDEN_DATE, write_chatml_tokenizer


@pytest.fixture(scope="session")
def harmony_tokenizer(tiny_model: tuple[Any, Any]) -> Any:
    return tiny_model[1]


def harmony_format(tokenizer: Any) -> HarmonyFormat:
    chat_format = format_for(tokenizer, today=GOLDEN_DATE)
    assert isinstance(chat_format, HarmonyFormat)
    return chat_format


@pytest.fixture(scope="session")
def harmony(harmony_tokenizer: Any) -> HarmonyFormat:
    return harmony_format(harmony_tokenizer)


@pytest.fixture(scope="session")
def script(harmony_tokenizer: Any):
    """Ids of a harmony string as the model would emit it (control tokens as ids)."""

    def encode(text: str) -> list[int]:
        return harmony_tokenizer.encode(text, add_special_tokens=False)

    return encode


@pytest.fixture(scope="session")
def chatml_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlx_lm.tokenizer_utils import load

    return load(write_chatml_tokenizer(tmp_path_factory.mktemp("chatml")))


@pytest.fixture(scope="session")
def chatml(chatml_tokenizer: Any) -> TemplateFormat:
    chat_format = format_for(chatml_tokenizer)
    assert isinstance(chat_format, TemplateFormat)
    return chat_format


@pytest.fixture(scope="session")
def gpt_oss_tokenizer(synthetic_cache: Path) -> Any:
    """GPT-OSS's real tokenizer (o200k_harmony ids), from the tiny-o200k preset."""
    from mlx_lm.tokenizer_utils import load

    return load(ensure_model("tiny-o200k", cache_dir=synthetic_cache))


@pytest.fixture(scope="session")
def gpt_oss_harmony(gpt_oss_tokenizer: Any) -> HarmonyFormat:
    return harmony_format(gpt_oss_tokenizer)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """openai-harmony's GPT-OSS encoding, loaded offline."""
    from .harmony_reference import load_reference

    return load_reference(tmp_path_factory.mktemp("o200k"))
