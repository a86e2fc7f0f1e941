"""What `submit` checks on the caller's thread, before anything is queued.

Only what depends on this engine: its vocabulary, batch size and memory. The
sampling numbers are the caller's to get right (the server's request schemas
check them); the engine trusts its typed inputs.
"""

from __future__ import annotations

from mlx_gen.engine.memory import MemoryModel
from mlx_gen.engine.sampling import MAX_TOP_LOGPROBS
from mlx_gen.engine.types import (
    ContextLengthExceeded,
    GenerationRequest,
    InvalidRequest,
)


def validate(
    request: GenerationRequest, memory: MemoryModel, max_batch_size: int
) -> None:
    prompt, p = request.prompt_token_ids, request.sampling
    vocab = memory.shape.vocab_size
    if not prompt:
        raise InvalidRequest("the prompt is empty")
    if min(prompt) < 0 or max(prompt) >= vocab:
        raise InvalidRequest(f"prompt token ids must be in [0, {vocab})")
    if p.prompt_logprobs is not None and not 0 <= p.prompt_logprobs <= min(
        MAX_TOP_LOGPROBS, vocab
    ):
        raise InvalidRequest(
            f"prompt_logprobs must be between 0 and {MAX_TOP_LOGPROBS}"
        )
    if not 1 <= p.n <= max_batch_size:
        raise InvalidRequest(f"n must be between 1 and {max_batch_size}")
    if p.logit_bias and not all(0 <= t < vocab for t in p.logit_bias):
        raise InvalidRequest(f"logit_bias token ids must be in [0, {vocab})")
    limit = memory.limit_for(p.n)
    if len(prompt) + p.max_tokens > limit:
        raise ContextLengthExceeded(len(prompt), p.max_tokens, limit)
