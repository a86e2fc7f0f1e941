"""What `submit` checks on the caller's thread, before anything is queued."""

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
    checks = [
        (p.max_tokens >= 1, "max_tokens must be at least 1"),
        (1 <= p.n <= max_batch_size, f"n must be between 1 and {max_batch_size}"),
        (p.temperature >= 0, "temperature must be >= 0"),
        (0 < p.top_p <= 1, "top_p must be in (0, 1]"),
        (p.top_k >= 0, "top_k must be >= 0"),
        (0 <= p.min_p <= 1, "min_p must be in [0, 1]"),
        (p.repetition_penalty > 0, "repetition_penalty must be > 0"),
        (
            0 <= p.top_logprobs <= MAX_TOP_LOGPROBS,
            f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}",
        ),
        (
            all(0 <= t < vocab for t in (p.logit_bias or {})),
            f"logit_bias token ids must be in [0, {vocab})",
        ),
        (all(isinstance(s, str) for s in p.stop), "stop must be a list of strings"),
    ]
    for ok, message in checks:
        if not ok:
            raise InvalidRequest(message)
    limit = memory.limit_for(p.n)
    if len(prompt) + p.max_tokens > limit:
        raise ContextLengthExceeded(len(prompt), p.max_tokens, limit)
