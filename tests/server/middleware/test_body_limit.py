"""The body-size limit: refused before it is read, counted as it arrives."""

from __future__ import annotations

import http.client
import json
import socket

import httpx


def test_body_over_the_limit_is_refused_before_it_is_read(make_server):
    server = make_server(max_body_bytes=4096)
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        # Announce a huge body, send none of it: the answer comes anyway.
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        )
        sock.settimeout(5)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 413
        assert json.loads(answer.read())["error"]["code"] == "request_too_large"


def test_chunked_body_is_counted_as_it_arrives(make_server):
    server = make_server(max_body_bytes=4096)

    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = httpx.post(server.url("/v1/chat/completions"), content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
