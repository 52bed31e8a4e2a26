"""Micro-costs of the pieces every request pays for, each beside the alternative it replaced.

One process, no sockets: each row times one piece in isolation (best of ``--runs`` runs of
``--number`` calls, CPU time), so the figures are steady on a busy machine. They explain
where a request's CPU goes; ``benchmarks/peers.py`` measures whole requests.

- header parsing: pywsgi's default (``http.client.parse_headers``, the ``email`` package)
  against ``orchestrator.frontend.httpserver.RequestHeaders``, for a device request's six headers;
- response encoding: ``json.dumps`` against orjson (``orchestrator.frontend.respond.encode_json``)
  for a play response and a 20 x 40 home page;
- backend reply decoding: ``backends.client``'s strict decoder (unique keys, finite
  numbers, no lone surrogates) for the play and home replies of benchmarks/peers;
- token verification: a first sight (HMAC, base64, JSON) against a remembered token;
- actor life: start + one tell + stop of a pykka ``ThreadingActor`` under gevent's
  patching, against ``actors.runtime.GreenletActor``.

    .venv/bin/python benchmarks/hot_path.py [--number 20000] [--runs 5]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import io  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent.event  # noqa: E402
import pykka  # noqa: E402
from _inprocess import best_us  # noqa: E402
from gevent.pywsgi import headers_factory  # noqa: E402

from actors.runtime import GreenletActor  # noqa: E402
from backends.client import _decode_json  # noqa: E402
from orchestrator.frontend.auth import TokenSigner  # noqa: E402
from orchestrator.frontend.httpserver import RequestHeaders  # noqa: E402
from orchestrator.frontend.respond import encode_json  # noqa: E402

HERE = Path(__file__).resolve().parent
HEADERS = (
    b"Host: 127.0.0.1:8080\r\nUser-Agent: tv-samsung-2024/7.1\r\nAccept: */*\r\n"
    b"Authorization: Bearer " + b"x" * 180 + b"\r\n"
    b"Content-Type: application/json\r\nContent-Length: 52\r\n\r\n"
)
PLAY = {
    "allowed": True,
    "title_id": "t42",
    "stream": {
        "manifest_url": "https://oca-de-08.cdn.example.invalid/manifests/t42/2160p-av1.mpd",
        "resolution": "2160p",
        "codec": "av1",
        "bitrate_kbps": 8800,
    },
    "license": {"id": "lic_0000000001", "drm": "playready", "expires_in_s": 86400},
    "resume_position_s": 600,
    "meta": {"degraded": []},
}
CARD = {
    "id": "t2329",
    "title": "The Broken Tiger",
    "year": 2004,
    "genres": ["Horror", "Crime"],
    "maturity_rating": "PG-13",
    "images": {"boxart": "https://img.example.invalid/boxart/t2329-3174b302.jpg"},
    "match": 57,
}
HOME = {
    "rows": [
        {"id": f"r{r}", "title": "Because you watched", "videos": [CARD] * 40} for r in range(20)
    ],
    "meta": {"degraded": []},
}


def _once(base: type[pykka.ThreadingActor]) -> type[pykka.ThreadingActor]:
    """An actor on ``base`` that sets its event at its first message and stops."""

    class Once(base):
        def __init__(self, done: gevent.event.Event) -> None:
            super().__init__()
            self.done = done

        def on_receive(self, _message: Any) -> None:
            self.done.set()
            self.stop()

    return Once


def _actor_life(cls: type[pykka.Actor]) -> Callable[[], None]:
    def life() -> None:
        done = gevent.event.Event()
        cls.start(done).tell(1)
        done.wait()
        gevent.idle()  # let the actor's loop finish stopping

    return life


def main() -> int:
    """Print one row per piece: the old way, the new way, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=5, help="runs; the best is kept")
    args = parser.parse_args()
    n, runs = args.number, args.runs

    replies = json.loads((HERE / "peers" / "bodies.json").read_text())["replies"]
    catalog = json.dumps(replies["/catalog/titles"]["body"]).encode()
    subscriber = json.dumps(replies["/subscriber/members/m1"]["body"]).encode()
    signer = TokenSigner(b"k" * 32, 3600)
    token = signer.issue("m1")
    fresh = TokenSigner(b"k" * 32, 3600)

    def first_sight() -> None:
        fresh._verified.clear()  # noqa: SLF001 - measuring the full check on purpose
        fresh.verify(token)

    def stdlib_json(body: Any) -> Callable[[], bytes]:
        return lambda: json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    rows: list[tuple[str, str, float, str, float]] = [
        (
            "parse 6 request headers",
            "http.client (email)",
            best_us(lambda: headers_factory(io.BufferedReader(io.BytesIO(HEADERS))), n, runs),
            "RequestHeaders",
            best_us(lambda: RequestHeaders.read(io.BufferedReader(io.BytesIO(HEADERS))), n, runs),
        ),
        (
            "encode a play response",
            "json.dumps",
            best_us(stdlib_json(PLAY), n, runs),
            "orjson",
            best_us(lambda: encode_json(PLAY), n, runs),
        ),
        (
            "encode a 20 x 40 home page",
            "json.dumps",
            best_us(stdlib_json(HOME), max(1, n // 100), runs),
            "orjson",
            best_us(lambda: encode_json(HOME), max(1, n // 100), runs),
        ),
        (
            "verify a member token",
            "first sight",
            best_us(first_sight, n, runs),
            "remembered",
            best_us(lambda: signer.verify(token), n, runs),
        ),
        (
            "actor start + tell + stop",
            "ThreadingActor",
            best_us(_actor_life(_once(pykka.ThreadingActor)), max(1, n // 4), runs),
            "GreenletActor",
            best_us(_actor_life(_once(GreenletActor)), max(1, n // 4), runs),
        ),
    ]
    print(f"{'piece':30} {'before':>20} {'us':>8}   {'after':>16} {'us':>8}  {'x':>6}")
    for piece, old_name, old_us, new_name, new_us in rows:
        print(
            f"{piece:30} {old_name:>20} {old_us:8.1f}   {new_name:>16} {new_us:8.1f}"
            f"  {old_us / new_us:5.1f}x"
        )
    print("strict decode of backend replies (backends.client), us per reply:")
    for name, raw in (("subscriber", subscriber), ("catalog (12 titles)", catalog)):
        cost = best_us(lambda raw=raw: _decode_json(raw), n, runs)
        print(f"  {name:28} {len(raw):6} B {cost:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
