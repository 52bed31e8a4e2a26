"""Request smuggling and hostile framing against a real ``frontdoor serve``: one row per case.

Starts ``frontdoor serve`` (embedded simulated services, statsd off) on free loopback
ports, then sends each case on a connection of its own over a raw socket: a request whose
framing is ambiguous or broken (RFC 9112 sections 6 and 7), most of them followed by a
second, well-formed request (``GET /healthz`` with ``X-Request-Id: smuggled-1``). A server
that frames strictly answers the first with a 400/501 problem and closes the connection;
one that does not may answer the second request out of the same bytes (the smuggled one).

Per case it prints the first response's status and problem ``code``, whether the server
closed the connection (within ``--wait-s``), and whether the smuggled request was served;
then three timeout cases, with the server's ``server.header_timeout_s`` and
``server.idle_timeout_s`` set short (``--header-timeout-s``, ``--idle-timeout-s``): a head
never finished, a connection that sends nothing, a kept-alive connection left idle, each
with what came back and when the server closed it; then what the server wrote to stderr:
lines that are not JSON (tracebacks), ERROR lines, access lines.

Bounded: about 30 connections to 127.0.0.1, each waited on for at most ``--wait-s``
seconds (the timeout cases: their timeout plus ``--wait-s``); the server is stopped at the
end.

    .venv/bin/python benchmarks/hostile_smuggling.py [--wait-s 1.5] [--header-timeout-s 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _processes import PYTHON, ROOT, free_port, stop, wait_listening

SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Request-Id: smuggled-1\r\n\r\n"
SIGNUP = b"POST /v1/nonmember/signup HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
CHUNKED_BODY = b"2\r\n{}\r\n0\r\n\r\n"


@dataclass(frozen=True)
class Case:
    """Bytes to send, what a strict server answers, and whether to half-close after."""

    name: str
    raw: bytes
    expect: str
    half_close: bool = False


def _post(headers: bytes, body: bytes) -> bytes:
    return SIGNUP + headers + b"\r\n" + body


def cases() -> list[Case]:
    """Every case, in the order of RFC 9112 section 6, then chunks, then limits."""
    smuggle_cl = len(b"{}" + SMUGGLED)
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(101))
    big_block = b"".join(b"X-B%d: %s\r\n" % (n, b"v" * 7000) for n in range(5))
    return [
        Case(
            "control: pipelined, valid",
            _post(b"Content-Length: 2\r\n", b"{}" + SMUGGLED),
            "4xx, kept open, 2nd served",
        ),
        Case(
            "control: valid chunked",
            _post(b"Transfer-Encoding: chunked\r\n", CHUNKED_BODY + SMUGGLED),
            "4xx, kept open, 2nd served",
        ),
        Case(
            "CL: 2 + CL: N (conflict)",
            _post(b"Content-Length: 2\r\nContent-Length: %d\r\n" % smuggle_cl, b"{}" + SMUGGLED),
            "400, closed",
        ),
        Case(
            "CL: 2 + CL: 2 (duplicate)",
            _post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}" + SMUGGLED),
            "400, closed",
        ),
        Case(
            "CL: 2, 2 (list)", _post(b"Content-Length: 2, 2\r\n", b"{}" + SMUGGLED), "400, closed"
        ),
        Case("CL: +2", _post(b"Content-Length: +2\r\n", b"{}" + SMUGGLED), "400, closed"),
        Case("CL: 0_2", _post(b"Content-Length: 0_2\r\n", b"{}" + SMUGGLED), "400, closed"),
        Case(
            "CL + TE: chunked",
            _post(
                b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(CHUNKED_BODY),
                CHUNKED_BODY + SMUGGLED,
            ),
            "400, closed",
        ),
        Case(
            "TE: gzip, chunked",
            _post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_BODY + SMUGGLED),
            "501, closed",
        ),
        Case(
            "TE: foo, chunked",
            _post(b"Transfer-Encoding: foo, chunked\r\n", CHUNKED_BODY + SMUGGLED),
            "501, closed",
        ),
        Case(
            "TE: chunked, gzip",
            _post(b"Transfer-Encoding: chunked, gzip\r\n", CHUNKED_BODY + SMUGGLED),
            "400, closed",
        ),
        Case("TE: foo", _post(b"Transfer-Encoding: foo\r\n", b"{}" + SMUGGLED), "400, closed"),
        Case(
            "TE: chunked, chunked",
            _post(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_BODY + SMUGGLED),
            "400, closed",
        ),
        Case(
            "TE: chunked + TE: gzip (2 lines)",
            _post(
                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                CHUNKED_BODY + SMUGGLED,
            ),
            "400, closed",
        ),
        Case(
            "TE: chunked in HTTP/1.0",
            SIGNUP.replace(b"HTTP/1.1", b"HTTP/1.0")
            + b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
            + CHUNKED_BODY
            + SMUGGLED,
            "400, closed",
        ),
        Case(
            "TE obs-fold",
            _post(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_BODY + SMUGGLED),
            "400, closed",
        ),
        Case(
            "chunk size zz",
            _post(b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n" + SMUGGLED),
            "400, closed",
        ),
        Case(
            "chunk size -2",
            _post(b"Transfer-Encoding: chunked\r\n", b"-2\r\n{}\r\n0\r\n\r\n" + SMUGGLED),
            "400, closed",
        ),
        Case(
            "chunk without CRLF",
            _post(b"Transfer-Encoding: chunked\r\n", b"2\r\n{}XX0\r\n\r\n" + SMUGGLED),
            "400, closed",
        ),
        Case(
            "chunk size 17 hex digits",
            _post(b"Transfer-Encoding: chunked\r\n", b"1" * 17 + b"\r\n{}\r\n0\r\n\r\n" + SMUGGLED),
            "400, closed",
        ),
        Case(
            "body short of CL, then FIN",
            _post(b"Content-Length: 50\r\n", b'{"a":'),
            "400, closed",
            half_close=True,
        ),
        Case(
            "chunked cut short, then FIN",
            _post(b"Transfer-Encoding: chunked\r\n", b'10\r\n{"a":'),
            "400, closed",
            half_close=True,
        ),
        Case(
            "HEAD with CL: 5",
            b"HEAD /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLED,
            "400, closed",
        ),
        Case(
            "URI over 8 KB",
            b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            "414, closed",
        ),
        Case(
            "header line over 8 KB",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n",
            "431, closed",
        ),
        Case(
            "101 header fields",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + many + b"\r\n",
            "431, closed",
        ),
        Case(
            "35 KB of header fields",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + big_block + b"\r\n",
            "431, closed",
        ),
    ]


@dataclass
class Outcome:
    """What came back on one connection."""

    status: str
    code: str
    problem_json: bool
    closed: bool
    smuggled: bool


def run_case(port: int, case: Case, wait_s: float) -> Outcome:
    """Send ``case`` on a new connection; read until the server closes or ``wait_s`` passes."""
    received = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(case.raw)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused mid-send: read what it answered
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                closed = True  # reset
                break
            if not chunk:
                closed = True
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    status = status_line.split(" ")[1] if status_line.count(" ") >= 1 else "-"
    code = "-"
    if b"problem+json" in head.lower():
        try:
            code = str(json.JSONDecoder().raw_decode(body.decode("latin-1"))[0].get("code"))
        except ValueError:
            code = "?"
    return Outcome(
        status=status or "-",
        code=code,
        problem_json=b"application/problem+json" in head,
        closed=closed,
        smuggled=b"smuggled-1" in received,
    )


@dataclass
class Timed:
    """A timeout case: what came back, and when the server closed the connection."""

    status: str
    closed_after_s: float | None


def run_timed(port: int, first: bytes, then: bytes | None, wait_s: float) -> Timed:
    """Send ``first``; if ``then`` is given, read one reply and send nothing more (``then``
    is unused bytes: the connection idles). Time from the last send until the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if first:
            sock.sendall(first)
        received = b""
        if then is not None:  # read the one reply, then idle
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            received = b""
        sent_at = time.monotonic()
        deadline = sent_at + wait_s
        closed_after: float | None = None
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                closed_after = time.monotonic() - sent_at
                break
            if not chunk:
                closed_after = time.monotonic() - sent_at
                break
            received += chunk
    status_line = received.split(b"\r\n", 1)[0].decode("latin-1")
    return Timed(status_line.split(" ")[1] if " " in status_line else "-", closed_after)


def main() -> int:
    """Start frontdoor serve, run every case, print the table and the stderr summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wait-s", type=float, default=1.5, help="longest wait per case")
    parser.add_argument("--header-timeout-s", type=float, default=1.0)
    parser.add_argument("--idle-timeout-s", type=float, default=2.0)
    args = parser.parse_args()
    port, backends_port = free_port(), free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    environ.update(
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_BACKENDS_EMBEDDED="true",
        FRONTDOOR_SERVER_HEADER_TIMEOUT_S=str(args.header_timeout_s),
        FRONTDOOR_SERVER_IDLE_TIMEOUT_S=str(args.idle_timeout_s),
    )
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [PYTHON, "-c", "from orchestrator.cli import main; raise SystemExit(main())",
             "serve", "--port", str(port), "--backends-port", str(backends_port)],
            cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            wait_listening(port)
            rows = [(case, run_case(port, case, args.wait_s)) for case in cases()]
            head_wait = args.header_timeout_s + args.wait_s
            timed = [
                ("head never finished", f"408 after ~{args.header_timeout_s:g} s",
                 run_timed(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n", None, head_wait)),
                ("connection sends nothing", f"closed, no answer, ~{args.header_timeout_s:g} s",
                 run_timed(port, b"", None, head_wait)),
                ("kept-alive connection idle", f"closed, no answer, ~{args.idle_timeout_s:g} s",
                 run_timed(port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", b"",
                           args.idle_timeout_s + args.wait_s)),
            ]  # fmt: skip
        finally:
            stop([process])
        stderr.seek(0)
        lines = stderr.read().decode("utf-8", "replace").splitlines()
    width = max(len(case.name) for case, _ in rows)
    print(f"{'case':<{width}}  status  code                         problem  closed  "
          f"2nd served  expected")  # fmt: skip
    for case, out in rows:
        print(
            f"{case.name:<{width}}  {out.status:<6}  {out.code:<27}  "
            f"{'yes' if out.problem_json else 'no':<7}  {'yes' if out.closed else 'NO':<6}  "
            f"{'YES' if out.smuggled else 'no':<10}  {case.expect}"
        )
    print(f"\n{'timeout case':<28}  status  closed after  expected")
    for name, expect, out in timed:
        after = "NOT closed" if out.closed_after_s is None else f"{out.closed_after_s:.2f} s"
        print(f"{name:<28}  {out.status:<6}  {after:<11}  {expect}")
    not_json = [line for line in lines if not _is_json(line)]
    errors = [line for line in lines if _is_json(line) and json.loads(line).get("level") == "ERROR"]
    access = [
        line for line in lines if _is_json(line) and json.loads(line).get("event") == "access"
    ]
    print(f"\nserver stderr: {len(lines)} lines, {len(not_json)} not JSON, "
          f"{len(errors)} ERROR, {len(access)} access lines")  # fmt: skip
    for line in not_json[:5]:
        print(f"  not JSON: {line[:150]}")
    for line in errors[:5]:
        print(f"  ERROR: {line[:150]}")
    return 0


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
