"""Reference implementation 1 of benchmarks/peers.py: aiohttp + uvloop.

``POST /v1/playback/play`` and ``GET /v1/discovery/home`` as a competent team would write
them with aiohttp: one shared ``ClientSession`` (keep-alive connector, a total timeout per
call), ``asyncio.gather`` for the parallel steps, the same data dependencies and replies as
Frontdoor (benchmarks/peers/_shared.py), stdlib json. No retries, breakers, bulkheads,
deadlines, metrics or access log: that is the difference being measured.

    .venv/bin/python benchmarks/peers/aiohttp_peer.py BACKENDS_BASE_URL PORT

The bearer-token secret comes from the PEERS_TOKEN_SECRET environment variable.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import uvloop
from _shared import (
    CARD_FIELDS,
    BadRequestError,
    compose_home,
    compose_play,
    decision_body,
    home_params,
    home_rows,
    licence_body,
    member_from,
    play_params,
)
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

SESSION = web.AppKey("session", ClientSession)
BASE = web.AppKey("base", str)
SECRET = web.AppKey("secret", bytes)


async def _get(app: web.Application, path: str, **params: str | int) -> Any:
    async with app[SESSION].get(app[BASE] + path, params=params or None) as response:
        response.raise_for_status()
        return await response.json()


async def _post(app: web.Application, path: str, body: Any) -> Any:
    async with app[SESSION].post(app[BASE] + path, json=body) as response:
        response.raise_for_status()
        return await response.json()


def _member(request: web.Request) -> str:
    member = member_from(request.headers.get("Authorization"), request.app[SECRET])
    if member is None:
        raise web.HTTPUnauthorized
    return member


async def play(request: web.Request) -> web.Response:
    """(subscriber || device) -> (decision || bookmark) -> licence."""
    member = _member(request)
    try:
        title, device_type = play_params(await request.json())
    except (ValueError, BadRequestError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    app = request.app
    subscriber, device = await asyncio.gather(
        _get(app, f"/subscriber/members/{member}"), _get(app, f"/device/devices/{device_type}")
    )
    decision, bookmark = await asyncio.gather(
        _post(app, "/playback/decisions", decision_body(member, title, device_type, subscriber)),
        _get(app, f"/bookmarks/{member}/{title}"),
    )
    licence = None
    if decision["allowed"]:
        body = licence_body(member, title, device_type, device)
        licence = await _post(app, "/licensing/licenses", body)
    return web.json_response(compose_play(title, decision, licence, bookmark))


async def home(request: web.Request) -> web.Response:
    """subscriber -> recommendations -> (catalog || ratings)."""
    member = _member(request)
    try:
        rows, per_row = home_params(dict(request.query))
    except BadRequestError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    app = request.app
    subscriber = await _get(app, f"/subscriber/members/{member}")
    recommendations = await _get(app, f"/recommendations/rows/{member}", rows=rows, per_row=per_row)
    cut, ids = home_rows(recommendations, rows, per_row)
    joined = ",".join(ids)
    catalog, ratings = await asyncio.gather(
        _get(app, "/catalog/titles", ids=joined, fields=CARD_FIELDS),
        _get(app, f"/ratings/match/{member}", ids=joined),
    )
    return web.json_response(compose_home(subscriber, cut, catalog, ratings))


@web.middleware
async def backend_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A failed or malformed backend call is a 502, not a traceback."""
    try:
        return await handler(request)
    except (ClientError, TimeoutError, KeyError, TypeError, ValueError) as exc:
        return web.json_response({"error": type(exc).__name__}, status=502)


async def serve(base: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    app = web.Application(middlewares=[backend_errors])
    app[BASE] = base.rstrip("/")
    app[SECRET] = os.environ["PEERS_TOKEN_SECRET"].encode()
    connector = TCPConnector(limit=256, limit_per_host=0, keepalive_timeout=60)
    app[SESSION] = ClientSession(
        connector=connector, timeout=ClientTimeout(total=1.0), json_serialize=json.dumps
    )
    app.router.add_post("/v1/playback/play", play)
    app.router.add_get("/v1/discovery/home", home)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    await runner.cleanup()
    await app[SESSION].close()


if __name__ == "__main__":
    uvloop.run(serve(sys.argv[1], int(sys.argv[2])))
