"""`mlx-gen generate`: one prompt, the answer streamed to stdout, speed on stderr."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from mlx_gen.models.loading import LoadedModel, load_model
from mlx_gen.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="text to continue or answer")
    parser.add_argument("--max-tokens", type=int, default=256, metavar="N")
    parser.add_argument("--temperature", type=float, help="default: the model's")
    parser.add_argument("--top-p", type=float, help="default: the model's")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable output")
    parser.add_argument(
        "--raw", action="store_true", help="send the prompt as is, no chat format"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    import mlx.core as mx
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    status = Console(stderr=True)
    with status.status(f"Loading {settings.model}"):
        loaded = load_model(settings.model, settings)
    prompt = build_prompt(loaded, args.prompt, raw=args.raw)
    defaults = loaded.entry.sampling
    sampler = make_sampler(
        temp=defaults.temperature if args.temperature is None else args.temperature,
        top_p=defaults.top_p if args.top_p is None else args.top_p,
        top_k=defaults.top_k,
        min_p=defaults.min_p,
    )
    if args.seed is not None:
        mx.random.seed(args.seed)
    last = None
    for last in stream_generate(
        loaded.model, loaded.tokenizer, prompt, args.max_tokens, sampler=sampler
    ):
        sys.stdout.write(last.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if last is not None:
        status.print(
            f"prompt {last.prompt_tokens} tokens at {last.prompt_tps:.1f} tok/s, "
            f"decode {last.generation_tokens} tokens at {last.generation_tps:.1f} "
            f"tok/s, peak memory {last.peak_memory:.3f} GB",
            style="dim",
            soft_wrap=True,
        )
    return 0


def build_prompt(loaded: LoadedModel, text: str, raw: bool) -> str | list[int]:
    """The user's text as the model's chat format renders it, or as is when raw."""
    if raw:
        return text
    from mlx_gen.chat import format_for

    chat_format = format_for(
        loaded.tokenizer, default_effort=loaded.entry.reasoning_effort
    )
    # Generation must end where the format says (harmony: <|return|>, <|call|>).
    tokenizer = loaded.tokenizer
    tokenizer.eos_token_ids = tokenizer.eos_token_ids | set(chat_format.stop_token_ids)
    return chat_format.render([{"role": "user", "content": text}]).token_ids
