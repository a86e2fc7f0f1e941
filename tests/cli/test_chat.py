"""`mlx-gen chat` driven through a pseudo-terminal, as a person would use it.

Random-weight models answer gibberish, so the tests read the structure of
the session: the per-turn stats line, and the prompt tokens the server
counted, which show exactly what each request carried (effort, system
message, history).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from cli_run import MLX_GEN, cli_env

PROMPT = "you> "
START = 120  # seconds: build the tiny model, load it, warm the engine up
TURN = 60
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>])")
STATS = re.compile(
    r"prompt (\d+) · completion (\d+) \(reasoning (\d+)\) · (?:[\d.]+|–) tok/s"
    r" · TTFT (?:\d+ ms|–) · effort (\w+)"
)
MAX_TOKENS = 24


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


class Session:
    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child

    def ready(self, timeout: float = START) -> str:
        """Everything shown until the next input prompt, without escapes."""
        self.child.expect_exact(PROMPT, timeout=timeout)
        return plain(self.child.before)

    def say(self, line: str) -> str:
        self.child.sendline(line)
        return self.ready(TURN)

    def turn(self, line: str) -> tuple[dict[str, Any], str]:
        shown = self.say(line)
        found = STATS.findall(shown)
        assert len(found) == 1, shown
        prompt, completion, reasoning, effort = found[0]
        stats = {
            "prompt": int(prompt),
            "completion": int(completion),
            "reasoning": int(reasoning),
            "effort": effort,
        }
        return stats, shown


def spawn(home: Path, *args: str, **env: str) -> pexpect.spawn:
    return pexpect.spawn(
        str(MLX_GEN),
        ["chat", *args],
        cwd=str(home),
        env=cli_env(home, **env),
        dimensions=(40, 200),
        encoding="utf-8",
        timeout=TURN,
    )


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[Any]:
    """Start `mlx-gen chat ARGS` in a pseudo-terminal; killed if still running."""
    children: list[pexpect.spawn] = []

    def start(*args: str) -> Session:
        children.append(spawn(tmp_path, *args))
        return Session(children[-1])

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def ends_with_status_0(session: Session) -> bool:
    session.child.expect(pexpect.EOF, timeout=TURN)
    session.child.close()
    return session.child.exitstatus == 0


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]], effort: str) -> int:
    from mlx_gen.chat import format_for

    return len(format_for(tokenizer).render(messages, None, effort).token_ids)


def test_a_session_with_effort_system_reset_and_a_clean_exit(chat, tiny_model):
    session = chat("--model", "tiny", "--max-tokens", str(MAX_TOKENS))
    tokenizer = tiny_model[1]
    user = {"role": "user", "content": "Hello there"}
    system = {"role": "system", "content": "Be brief."}
    medium = prompt_tokens(tokenizer, [user], "medium")
    wanted = prompt_tokens(tokenizer, [system, user], "high")
    # The counts tell the settings apart, so the test can fail.
    assert wanted != prompt_tokens(tokenizer, [system, user], "medium")
    assert wanted != prompt_tokens(tokenizer, [user], "high")

    banner = session.ready()
    assert "mlx-gen chat" in banner and "tiny" in banner

    first, shown = session.turn("Hello there")
    # The registry's default effort (medium) rendered the first prompt.
    assert first["prompt"] == medium
    assert 1 <= first["completion"] <= MAX_TOKENS
    assert 0 <= first["reasoning"] <= first["completion"]
    assert first["effort"] == "default"
    answer = shown.split("Hello there", 1)[1].split("prompt ", 1)[0]
    assert answer.strip(), "nothing shown between the question and the stats"

    assert "reasoning effort: high" in session.say("/effort high")
    assert "system message: Be brief." in session.say("/system Be brief.")
    assert "new conversation" in session.say("/reset")
    second, _ = session.turn("Hello there")
    # Exactly the new system message and effort, and no history.
    assert second["prompt"] == wanted
    assert second["effort"] == "high"

    third, _ = session.turn("And again?")
    assert third["prompt"] > second["prompt"] + 3  # the history came along

    assert "reasoning: shown in full" in session.say("/think")
    assert "/effort low|medium|high" in session.say("/nonsense")

    session.child.sendeof()  # Ctrl-D
    assert ends_with_status_0(session)


KEY = "chat-test-key"
THOUGHT = "Let me think about it."
ANSWER = "The answer is 42."


@pytest.fixture(scope="module")
def server(tiny_model_path: Path, tiny_model: Any) -> Iterator[Any]:
    """A running mlx-gen server with an API key, whose answers a test can script."""
    from server.helpers import Script, live, settings_for

    from mlx_gen.chat import format_for
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import load_engine
    from mlx_gen.server.app import create_app
    from mlx_gen.server.served import ServedModel

    tokenizer = tiny_model[1]
    script = Script()
    engine = load_engine(tiny_model_path, EngineConfig(max_batch_size=4))
    served = ServedModel(
        name="tiny",
        engine=engine,
        chat_format=format_for(tokenizer),
        tokenizer=tokenizer,
        max_context=4096,
        vocab_size=len(tokenizer),
    )
    try:
        with live(
            create_app(settings_for(api_keys=[KEY]), served, request_hook=script)
        ) as running:
            running.script = script
            yield running
    finally:
        engine.shutdown()


@pytest.fixture
def script(server: Any) -> Iterator[Any]:
    """What the server is made to answer in this test; nothing scripted after it."""
    yield server.script
    server.script.reset()


@pytest.fixture
def scripted(script: Any, tiny_model: Any) -> list[int]:
    """The server answers with reasoning, then content."""
    from server.helpers import script_ids

    text = (
        f"<|channel|>analysis<|message|>{THOUGHT}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{ANSWER}<|return|>"
    )
    script.ids = script_ids(tiny_model[1], text)
    return script.ids


@pytest.mark.parametrize("api", ["", "/v1", "/v1/"])
def test_any_form_of_the_servers_url_finds_its_model(chat, server, api):
    session = chat("--url", server.url(api), "--api-key", KEY)
    # No --model: the chat asks the server which model it serves.
    assert "tiny" in session.ready()
    session.child.sendintr()
    assert ends_with_status_0(session)


def test_reasoning_folds_or_shows_over_a_servers_url(chat, server, scripted):
    session = chat("--url", server.url("/v1"), "--api-key", KEY)
    assert "tiny" in session.ready()
    stats, shown = session.turn("Hello there")
    assert stats["completion"] == len(scripted)
    assert 0 < stats["reasoning"] < stats["completion"]
    assert "▸ thought for" in shown
    assert ANSWER in shown
    assert "shown in full" in session.say("/think")
    stats, shown = session.turn("And again?")
    assert THOUGHT in shown and ANSWER in shown
    assert "thought for" not in shown
    session.child.sendintr()  # Ctrl-C at the prompt
    assert ends_with_status_0(session)


def test_ctrl_c_stops_the_answer_not_the_chat(chat, server, script, tiny_model):
    from polling import wait_until
    from server.helpers import script_ids

    # A long reasoning: seconds of streaming, even for the tiny model.
    text = f"<|channel|>analysis<|message|>{THOUGHT * 500}<|end|>"
    script.ids = script_ids(tiny_model[1], text)
    engine = server.state.served.engine
    session = chat("--url", server.url("/v1"), "--api-key", KEY, "--max-tokens", "3800")
    session.ready()
    before = engine.stats().generated_tokens_total
    session.child.sendline("Think hard")
    session.child.expect_exact("thinking…", timeout=TURN)
    session.child.sendintr()
    shown = session.ready(TURN)
    assert "(stopped)" in shown and not STATS.search(shown)
    # The server saw the client leave and aborted the generation.
    assert wait_until(lambda: engine.stats().running == 0, timeout=TURN)
    assert engine.stats().generated_tokens_total - before < len(script.ids)
    assert "new conversation" in session.say("/reset")
    session.child.sendeof()
    assert ends_with_status_0(session)


def test_a_refused_turn_is_shown_and_the_chat_goes_on(chat, server):
    args = ("--url", server.url("/v1"), "--api-key", "wrong", "--model", "tiny")
    session = chat(*args)
    session.ready()
    shown = session.say("Hello there")
    assert "error:" in shown and not STATS.search(shown)
    assert "new conversation" in session.say("/reset")
    session.child.sendline("/quit")
    assert ends_with_status_0(session)
