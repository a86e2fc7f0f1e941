"""The tokenize bodies: one form of prompt, never both."""

from __future__ import annotations

from mlx_gen.server.schemas.tokenize import DetokenizeRequest, TokenizeRequest

from ..helpers import refusal

USER = [{"role": "user", "content": "hi"}]


def test_tokenize_takes_one_form():
    assert refusal(TokenizeRequest, {"model": "m"}).status == 400
    both = {"model": "m", "prompt": "x", "messages": USER}
    assert refusal(TokenizeRequest, both).status == 400
    error = refusal(TokenizeRequest, {"model": "m", "prompt": "x", "tools": []})
    assert error.param == "prompt"
    req = TokenizeRequest.model_validate({"model": "m", "messages": USER})
    assert req.messages[0].content == "hi"
    assert refusal(DetokenizeRequest, {"model": "m", "tokens": [-4]}).param == (
        "tokens[0]"
    )
