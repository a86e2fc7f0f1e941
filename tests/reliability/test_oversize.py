"""Oversized bodies and request heads are refused without being read whole."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time

import httpx
import pytest
from polling import wait_until

from .clients import address, chat_body, is_openai_error, raw_exchange
from .conftest import Launch

LIMIT = 64 * 1024  # --max-body-bytes
HEAD_LIMIT = 16 * 1024  # h11's bound on a request head still being received


@pytest.fixture(scope="module")
def server(launch: Launch):
    return launch("--max-body-bytes", str(LIMIT))


def post_head(extra: str) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()  # fmt: skip


def send_until_answer(sock: socket.socket, pieces, pause: float = 0.002) -> int:
    """Send pieces until the server answers (or they run out); bytes sent."""
    sent = 0
    for piece in pieces:
        if select.select([sock], [], [], pause)[0]:
            break
        try:
            sock.sendall(piece)
        except OSError:  # the server closed the connection: it answered first
            break
        sent += len(piece)
    return sent


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    sock.settimeout(30)
    response = http.client.HTTPResponse(sock)
    response.begin()
    try:
        return response.status, response.read()
    except (ConnectionError, http.client.IncompleteRead):
        return response.status, b""


def closed_by_server(sock: socket.socket, more: bytes, within: float = 10.0) -> bool:
    """The server closed the connection although the client goes on sending
    `more`: it reads no more of this request, instead of reading it to the end."""

    def closed() -> bool:
        try:
            if select.select([sock], [], [], 0.01)[0] and not sock.recv(65536):
                return True
            sock.sendall(more)
        except OSError:  # reset: the server closed it
            return True
        return False

    return wait_until(closed, within, interval=0)


def assert_too_large(status: int, body: bytes) -> None:
    assert status == 413
    error = json.loads(body)
    assert is_openai_error(error) and error["error"]["code"] == "request_too_large"


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_refused(server):
    body = json.dumps(chat_body("Hi", 2)).encode()
    at_limit = body + b" " * (LIMIT - len(body))  # JSON allows trailing spaces
    answer = httpx.post(server.url("/v1/chat/completions"), content=at_limit)
    assert answer.status_code == 200, answer.text
    over = httpx.post(server.url("/v1/chat/completions"), content=at_limit + b" ")
    assert_too_large(over.status_code, over.content)


def test_a_declared_length_over_the_limit_is_refused_before_the_body(server):
    with socket.create_connection(address(server.base), 30) as sock:
        sock.sendall(post_head(f"Content-Length: {10**12}\r\n"))  # a terabyte
        started = time.monotonic()
        assert_too_large(*read_answer(sock))
        assert time.monotonic() - started < 10
        assert closed_by_server(sock, b" " * 1024)
    assert server.alive()


def test_a_chunked_body_is_cut_at_the_limit(server):
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"  # 1 KiB chunks, never a last one
    with socket.create_connection(address(server.base), 30) as sock:
        sock.sendall(post_head("Transfer-Encoding: chunked\r\n"))
        sent = send_until_answer(sock, [chunk] * (1024 * LIMIT // 1024))
        status, body = read_answer(sock)
        assert_too_large(status, body)
        # Refused soon after the limit, long before the body's end.
        assert LIMIT < sent < 64 * LIMIT, sent
        assert closed_by_server(sock, chunk)
    assert server.alive()


def head_refused(status: int | None) -> bool:
    """uvicorn answers a head over h11's limit with a plain 400 (or 431)."""
    return status in (None, 400, 431)


def test_a_huge_request_head_sent_at_once_is_refused(server):
    head = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 2_000_000}\r\n\r\n"
    outcome = raw_exchange(server.base, head.encode())
    assert head_refused(outcome.status), outcome.describe()
    assert httpx.get(server.url("/health")).status_code == 200


@pytest.mark.parametrize("shape", ["one long header", "many headers", "long target"])
def test_a_request_head_that_keeps_growing_is_cut_at_the_limit(server, shape):
    starts = {
        "one long header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ",
        "many headers": b"GET /health HTTP/1.1\r\nHost: x\r\n",
        "long target": b"GET /health?q=",
    }
    piece = b"X-Some-Header: value\r\n" if shape == "many headers" else b"a" * 512
    with socket.create_connection(address(server.base), 30) as sock:
        sock.sendall(starts[shape])
        sent = send_until_answer(sock, [piece] * (2 * 1024 * 1024 // len(piece)))
        try:
            status: int | None = read_answer(sock)[0]
        except (http.client.HTTPException, ConnectionError):
            status = None
        assert head_refused(status), status
        assert HEAD_LIMIT // 2 < sent < 1024 * 1024, sent
        assert closed_by_server(sock, piece)
    assert server.alive()
    assert httpx.get(server.url("/health")).status_code == 200
