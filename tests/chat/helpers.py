"""Shared by the chat tests: golden pieces and a ChatML test tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlx_gen.models.synthetic.presets import training_text

GOLDEN_DATE = "2026-11-26"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Gets the weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def system(effort: str, date: str = GOLDEN_DATE, functions: bool = False) -> str:
    calls = "\nCalls to these tools must go to the commentary channel: 'functions'."
    return (
        "<|start|>system<|message|>"
        "You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\n"
        f"Current date: {date}\n"
        "\n"
        f"Reasoning: {effort}\n"
        "\n"
        "# Valid channels: analysis, commentary, final. "
        "Channel must be included for every message."
        f"{calls if functions else ''}<|end|>"
    )


def assert_ids_match_text(harmony_tokenizer: Any, rendered: Any) -> None:
    """The ids decode to the text, and no BOS was slipped in."""
    assert harmony_tokenizer.decode(rendered.token_ids) == rendered.text
    assert harmony_tokenizer.bos_token_id not in rendered.token_ids


# A ChatML-like template whose generation prompt opens a thinking block.
CHATML_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n# Tools\n"
    "{% for tool in tools %}{{ tool.function.name }}: "
    "{{ tool.function.description }}{{ '\\n' }}{% endfor %}<|im_end|>{{ '\\n' }}"
    "{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}{{ '\\n' }}"
    "{{ m.content }}<|im_end|>{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


def write_chatml_tokenizer(
    out_dir: Path,
    template: str | None = CHATML_TEMPLATE,
    **config_extra: Any,
) -> Path:
    """A byte-level BPE with ChatML control tokens, `<think>` tags and `template`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_text(0, n_words=2000), trainer)
    tokenizer.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tokenizer.add_tokens(["<think>", "</think>"])
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|im_end|>",
        "clean_up_tokenization_spaces": False,
        **config_extra,
    }
    if template is not None:
        config["chat_template"] = template
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config))
    return out_dir
