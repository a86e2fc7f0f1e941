"""The format comes from the model's tokenizer, never from a request."""

from __future__ import annotations

from typing import Any

import pytest

from mlx_gen.chat import HarmonyFormat, TemplateFormat, format_for
from mlx_gen.chat.harmony_tokens import control_token_ids


def test_harmony_tokens_select_harmony(harmony_tokenizer: Any) -> None:
    chat_format = format_for(harmony_tokenizer)
    assert isinstance(chat_format, HarmonyFormat)
    assert chat_format.name == "harmony"


def test_other_tokenizers_use_their_template(chatml_tokenizer: Any) -> None:
    assert control_token_ids(chatml_tokenizer) is None
    chat_format = format_for(chatml_tokenizer, default_effort="low")
    assert isinstance(chat_format, TemplateFormat)
    assert chat_format.name == "template"


def test_control_ids_are_looked_up_by_string(harmony_tokenizer: Any) -> None:
    ids = control_token_ids(harmony_tokenizer)
    assert ids is not None
    assert {harmony_tokenizer.convert_ids_to_tokens(i) for i in ids.values()} == set(
        ids
    )


def test_default_effort_must_be_a_harmony_level(harmony_tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="reasoning effort"):
        format_for(harmony_tokenizer, default_effort="extreme")


def test_gpt_oss_tokenizer_has_the_real_harmony_ids(
    gpt_oss_tokenizer: Any, gpt_oss_harmony: HarmonyFormat
) -> None:
    # HARMONY.md's table: the ids GPT-OSS was trained with.
    assert control_token_ids(gpt_oss_tokenizer) == {
        "<|return|>": 200002,
        "<|constrain|>": 200003,
        "<|channel|>": 200005,
        "<|start|>": 200006,
        "<|end|>": 200007,
        "<|message|>": 200008,
        "<|call|>": 200012,
    }
    assert gpt_oss_harmony.stop_token_ids == [200002, 200012]
    assert gpt_oss_tokenizer.bos_token_id == 199998
    assert gpt_oss_tokenizer.pad_token_id == 199999
    assert len(gpt_oss_tokenizer) == 201088
