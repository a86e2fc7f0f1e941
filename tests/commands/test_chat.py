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
def session(tmp_path: Path) -> Iterator[Session]:
    child = spawn(tmp_path, "--model", "tiny", "--max-tokens", str(MAX_TOKENS))
    try:
        yield Session(child)
    finally:
        if child.isalive():
            child.terminate(force=True)


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]], effort: str) -> int:
    from mlx_gen.chat import format_for

    return len(format_for(tokenizer).render(messages, None, effort).token_ids)


def test_a_session_with_effort_system_reset_and_a_clean_exit(session, tiny_model):
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
    session.child.expect(pexpect.EOF, timeout=TURN)
    session.child.close()
    assert session.child.exitstatus == 0


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
        prepare_request=script,
    )
    try:
        with live(create_app(settings_for(api_keys=[KEY]), served)) as running:
            running.script = script
            yield running
    finally:
        engine.shutdown()


@pytest.fixture
def scripted(server: Any, tiny_model: Any) -> Iterator[list[int]]:
    """The server answers with reasoning, then content."""
    from server.helpers import script_ids

    text = (
        f"<|channel|>analysis<|message|>{THOUGHT}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{ANSWER}<|return|>"
    )
    server.script.ids = script_ids(tiny_model[1], text)
    yield server.script.ids
    server.script.reset()


def test_reasoning_folds_or_shows_over_a_servers_url(server, scripted, tmp_path):
    child = spawn(tmp_path, "--url", server.url("/v1"), "--api-key", KEY)
    try:
        session = Session(child)
        # No --model: the chat asks the server which model it serves.
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
        child.sendintr()  # Ctrl-C at the prompt
        child.expect(pexpect.EOF, timeout=TURN)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)


def test_a_refused_turn_is_shown_and_the_chat_goes_on(server, tmp_path):
    args = ("--url", server.url("/v1"), "--api-key", "wrong", "--model", "tiny")
    child = spawn(tmp_path, *args)
    try:
        session = Session(child)
        session.ready()
        shown = session.say("Hello there")
        assert "error:" in shown and not STATS.search(shown)
        assert "new conversation" in session.say("/reset")
        child.sendline("/quit")
        child.expect(pexpect.EOF, timeout=TURN)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
