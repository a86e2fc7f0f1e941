"""The completions body: prompt forms and what is refused."""

from __future__ import annotations

from mlx_gen.server.schemas.completions import CompletionRequest

from ..helpers import refusal


def test_completion_prompt_forms():
    for prompt, expected in [("hi", ["hi"]), ([1, 2], [[1, 2]]), (["hi"], ["hi"]),
                             ([[3, 4]], [[3, 4]]), (["a", "b"], ["a", "b"]),
                             ([[1], [2, 3]], [[1], [2, 3]])]:  # fmt: skip
        req = CompletionRequest.model_validate({"model": "m", "prompt": prompt})
        assert req.prompts == expected
    error = refusal(CompletionRequest, {"model": "m", "prompt": [5, -1]})
    assert error.param == "prompt[1]" and "greater than or equal" in error.message
    error = refusal(CompletionRequest, {"model": "m", "prompt": [[5], [1, -1]]})
    assert error.param == "prompt[1][1]"
    error = refusal(CompletionRequest, {"model": "m", "prompt": ""})
    assert error.param == "prompt"
    # A bad element of a batch is named.
    for prompt, named in [(["a", ""], "prompt[1] is empty"),
                          ([[1], []], "prompt[1] is empty"),
                          (["a", [1]], "prompt[1] is a list but prompt[0] is a string"),
                          ([[1], "a", [2]], "prompt[1] is a string")]:  # fmt: skip
        error = refusal(CompletionRequest, {"model": "m", "prompt": prompt})
        assert error.param == "prompt" and named in error.message


def test_what_prompt_logprobs_are_asked():
    base = {"model": "m", "prompt": "x"}

    def asked(**fields) -> int | None:
        return CompletionRequest.model_validate(base | fields).prompt_logprobs_asked

    assert asked() is None and asked(logprobs=2) is None and asked(echo=True) is None
    assert asked(echo=True, logprobs=2) == 2
    assert asked(prompt_logprobs=0) == 0
    assert asked(echo=True, logprobs=1, prompt_logprobs=4) == 4


def test_completion_refusals():
    base = {"model": "m", "prompt": "x"}
    assert refusal(CompletionRequest, base | {"best_of": 3}).param == "best_of"
    assert refusal(CompletionRequest, base | {"suffix": "y"}).param == "suffix"
    assert refusal(CompletionRequest, base | {"logprobs": 6}).param == "logprobs"
    error = refusal(CompletionRequest, base | {"max_tokens": 0})
    assert error.param == "max_tokens" and "echo" in error.message
    error = refusal(CompletionRequest, base | {"prompt_logprobs": 21})
    assert error.param == "prompt_logprobs"
    error = refusal(CompletionRequest, base | {"prompt_logprobs": 1, "stream": True})
    assert error.param == "prompt_logprobs" and "stream" in error.message


def test_an_evaluation_harness_may_send_more_than_four_stops():
    """lm-evaluation-harness sends a task's stops plus the end-of-text string."""
    stops = ["\n\n", "Question:", "Q:", "</s>", "<|endoftext|>"]
    req = CompletionRequest.model_validate({"model": "m", "prompt": "x", "stop": stops})
    assert req.stop == stops
    too_many = {"model": "m", "prompt": "x", "stop": [str(i) for i in range(17)]}
    assert refusal(CompletionRequest, too_many).param == "stop"
