"""/v1/responses takes the fields Codex CLI sends that change nothing here,
and refuses those whose meaning it would break."""

from __future__ import annotations

import openai
import pytest

from ..conftest import MODEL
from ..helpers import script_ids
from .test_chat_completions import THINK_THEN_ANSWER

# As Codex CLI sends them (store false, streamed, reasoning given back in clear).
CODEX_FIELDS = dict(
    include=["reasoning.encrypted_content"],
    prompt_cache_key="session-1",
    prompt_cache_retention="in_memory",
    service_tier="auto",
    truncation="disabled",
    store=False,
    stream_options={"include_obfuscation": False},
    text={"verbosity": "low"},
    reasoning={"effort": "low", "summary": "auto"},
    safety_identifier="user-hash",
    top_logprobs=0,
)


def test_codex_fields_are_taken_and_change_nothing(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    plain = client.responses.create(
        model=MODEL, input="Hi", reasoning={"effort": "low"}, max_output_tokens=64
    )
    with client.responses.stream(
        model=MODEL, input="Hi", max_output_tokens=64, **CODEX_FIELDS
    ) as stream:
        codex = stream.get_final_response()
    assert codex.output_text == plain.output_text == "Hello there"
    assert [item.type for item in codex.output] == ["reasoning", "message"]
    assert codex.usage.input_tokens == plain.usage.input_tokens
    with pytest.raises(openai.NotFoundError):  # store false: kept nowhere
        client.responses.retrieve(codex.id)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"truncation": "auto"}, "truncation"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"include": ["everything"]}, "include[0]"),
        ({"extra_body": {"background": True}}, "background"),
    ],
)
def test_fields_that_would_be_broken_are_refused(client, fields, param):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="Hi", **fields)
    assert refused.value.param == param
    assert param.split("[")[0] in refused.value.message
