"""`mlx-gen chat`: an interactive chat with a local model or a running server.

Either way the chat is a client of the OpenAI API through the official SDK;
a local model is served in this process first (see chat_local.py). Input is
plain `input()` with readline, so it works in any terminal or pseudo-terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from mlx_gen.bench.loadgen import normalize_base_url
from mlx_gen.cli.chat_local import Endpoint
from mlx_gen.cli.chat_ui import TurnStats, TurnView
from mlx_gen.errors import CommandError
from mlx_gen.settings import Settings

EFFORTS = ("low", "medium", "high")
HELP = (
    "/think: show or fold reasoning · /effort low|medium|high · /system TEXT "
    "(empty: none) · /reset: new conversation · /quit (or Ctrl-D)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="a running server, e.g. http://127.0.0.1:8000 (or its /v1)"
    )
    parser.add_argument(
        "--api-key", dest="client_api_key", metavar="KEY", help="key for --url"
    )
    parser.add_argument("--max-tokens", type=int, metavar="N", help="per answer")
    parser.add_argument("--temperature", type=float, help="default: the model's")
    parser.add_argument("--effort", choices=EFFORTS, help="default: the model's")
    parser.add_argument("--system", metavar="TEXT", help="a system message")
    parser.add_argument(
        "--think", action="store_true", help="show reasoning in full from the start"
    )


@dataclass
class Conversation:
    system: str | None = None
    effort: str | None = None  # None: the server's default for the model
    show_reasoning: bool = False
    history: list[dict[str, str]] = field(default_factory=list)

    def messages(self, user: str) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.history, {"role": "user", "content": user}]


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(highlight=False)
    conversation = Conversation(args.system, args.effort, args.think)
    from openai import OpenAI

    with _endpoint(args, settings, console) as endpoint:
        client = OpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            max_retries=0,
            timeout=600.0,
        )
        with client:
            model = endpoint.model or _first_model(client)
            console.print(f"[bold]mlx-gen chat[/] · {model} · {HELP}", style="dim")
            _loop(console, client, model, conversation, args)
    return 0


@contextlib.contextmanager
def _endpoint(
    args: argparse.Namespace, settings: Settings, console: Console
) -> Iterator[Endpoint]:
    if args.url:
        # The server's root or its API root: both are what users copy.
        api = normalize_base_url(args.url) + "/v1"
        yield Endpoint(api, args.client_api_key or "none", args.model)
        return
    from mlx_gen.cli.chat_local import local_server

    with contextlib.ExitStack() as stack:
        with console.status(f"Loading {settings.model}"):
            endpoint = stack.enter_context(local_server(settings))
        yield endpoint


def _first_model(client: Any) -> str:
    from openai import OpenAIError

    try:
        models = client.models.list().data
    except OpenAIError as exc:
        raise CommandError(f"cannot list the server's models: {exc}") from None
    if not models:
        raise CommandError("the server serves no model")
    return models[0].id


def _loop(
    console: Console,
    client: Any,
    model: str,
    conversation: Conversation,
    args: argparse.Namespace,
) -> None:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line:
            continue
        if line.startswith("/"):
            if not _command(console, conversation, line):
                return
            continue
        answer = _turn(console, client, model, conversation, line, args)
        if answer is not None:
            conversation.history += [
                {"role": "user", "content": line},
                {"role": "assistant", "content": answer},
            ]


def _command(console: Console, conversation: Conversation, line: str) -> bool:
    """Apply one slash command; False means quit."""
    name, _, rest = line.partition(" ")
    rest = rest.strip()
    if name in ("/quit", "/exit"):
        return False
    if name == "/think":
        conversation.show_reasoning = not conversation.show_reasoning
        state = "shown in full" if conversation.show_reasoning else "folded"
        console.print(f"reasoning: {state}", style="dim")
    elif name == "/effort" and rest in EFFORTS:
        conversation.effort = rest
        console.print(f"reasoning effort: {rest}", style="dim")
    elif name == "/system":
        conversation.system = rest or None
        console.print(f"system message: {rest or 'none'}", style="dim", markup=False)
    elif name == "/reset":
        conversation.history.clear()
        console.print("new conversation", style="dim")
    else:
        console.print(HELP, style="yellow")
    return True


def _turn(
    console: Console,
    client: Any,
    model: str,
    conversation: Conversation,
    user: str,
    args: argparse.Namespace,
) -> str | None:
    """Stream one answer; its content, or None when it failed or was stopped."""
    from openai import OpenAIError

    options: dict[str, Any] = {"stream_options": {"include_usage": True}}
    for key, value in (
        ("reasoning_effort", conversation.effort),
        ("max_tokens", args.max_tokens),
        ("temperature", args.temperature),
    ):
        if value is not None:
            options[key] = value
    view = TurnView(console, conversation.show_reasoning)
    timer = _Timer()
    content: list[str] = []
    usage = None
    stream = None
    try:
        stream = client.chat.completions.create(
            model=model, messages=conversation.messages(user), stream=True, **options
        )
        for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                reasoning, text = _texts(choice.delta)
                if reasoning:
                    timer.text()
                    view.reasoning(reasoning)
                if text:
                    timer.text()
                    view.content(text)
                    content.append(text)
    except KeyboardInterrupt:
        view.close("(stopped)")
        return None
    except OpenAIError as exc:
        view.close(f"error: {_error_text(exc)}")
        return None
    finally:
        if stream is not None:
            stream.close()  # the server sees the disconnect and aborts
    view.close()
    if usage is not None:
        view.stats(timer.stats(usage, conversation.effort or "default"))
    return "".join(content)


def _texts(delta: Any) -> tuple[str, str]:
    """(reasoning, content) of a streamed delta; servers name reasoning either way."""
    extra = delta.model_extra or {}
    reasoning = extra.get("reasoning") or extra.get("reasoning_content") or ""
    return str(reasoning), delta.content or ""


def _error_text(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc)


class _Timer:
    def __init__(self) -> None:
        self.sent = time.perf_counter()
        self.first: float | None = None

    def text(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def stats(self, usage: Any, effort: str) -> TurnStats:
        details = usage.completion_tokens_details
        reasoning = (details.reasoning_tokens or 0) if details else 0
        end = time.perf_counter()
        return TurnStats(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=reasoning,
            ttft=None if self.first is None else self.first - self.sent,
            decode_seconds=0.0 if self.first is None else end - self.first,
            effort=effort,
        )
