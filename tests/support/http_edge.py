"""Shared by the edge tests and `bench/bodylimit.py`: a chunked POST over a raw socket that keeps
sending until the server answers (or hangs up), so an early answer is visible as such."""

from __future__ import annotations

import select
import socket


def post_chunked(
    port: int,
    path: str,
    total: int,
    *,
    chunk: int = 256 * 1024,
    timeout: float = 60,
    content_type: str = "application/json",
) -> tuple[int, int]:
    """POST ``total`` bytes to ``path`` with ``Transfer-Encoding: chunked``; returns the answer's
    status (0 if the server hung up without one) and how many body bytes were sent by then."""
    data = b"x" * chunk
    frame = f"{chunk:x}\r\n".encode("ascii") + data + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode("ascii")
        )
        try:
            while sent < total:
                readable, _, _ = select.select([s], [], [], 0)
                if readable:
                    break  # the server answered before the body was done
                s.sendall(frame)
                sent += chunk
            else:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while b"\r\n" not in answer:
                part = s.recv(4096)
                if not part:
                    break
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
    fields = answer.split(b" ", 2)
    status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
    return status, sent


def post_declaring(port: int, path: str, length: int, *, timeout: float = 30) -> int:
    """POST headers declaring ``Content-Length: length`` and no body; the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n".encode("ascii")
        )
        answer = s.recv(4096)
    fields = answer.split(b" ", 2)
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
