"""GET /v1/models and /v1/models/{id}: only the served model exists."""

from __future__ import annotations

import openai
import pytest


def test_list_and_retrieve(server):
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    (model,) = client.models.list().data
    assert model.id == "tiny" and model.object == "model"
    assert model.owned_by == "mlx-gen" and model.created > 0
    assert client.models.retrieve("tiny").id == "tiny"
    for name in ("gpt-4o", "../tiny", "/tmp/models/tiny"):
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve(name)
        assert missing.value.code == "model_not_found"
