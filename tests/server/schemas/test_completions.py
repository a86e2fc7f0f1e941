"""The completions body: prompt forms and what is refused."""

from __future__ import annotations

from mlx_gen.server.schemas.completions import CompletionRequest

from ..helpers import refusal


def test_completion_prompt_forms():
    for prompt, expected in [("hi", "hi"), ([1, 2], [1, 2]), (["hi"], "hi"),
                             ([[3, 4]], [3, 4])]:  # fmt: skip
        req = CompletionRequest.model_validate({"model": "m", "prompt": prompt})
        assert req.prompt == expected
    error = refusal(CompletionRequest, {"model": "m", "prompt": ["a", "b"]})
    assert (error.param, error.code) == ("prompt", "unsupported_value")
    error = refusal(CompletionRequest, {"model": "m", "prompt": [5, -1]})
    assert error.param == "prompt[1]" and "greater than or equal" in error.message
    error = refusal(CompletionRequest, {"model": "m", "prompt": ""})
    assert error.param == "prompt"


def test_completion_refusals():
    base = {"model": "m", "prompt": "x"}
    assert refusal(CompletionRequest, base | {"best_of": 3}).param == "best_of"
    assert refusal(CompletionRequest, base | {"suffix": "y"}).param == "suffix"
    error = refusal(CompletionRequest, base | {"echo": True, "logprobs": 1})
    assert error.param == "logprobs"
    assert refusal(CompletionRequest, base | {"logprobs": 6}).param == "logprobs"
