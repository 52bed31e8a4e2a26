"""Regenerate ``bodies.json``: the replies the fixed-delay nginx backends of
``benchmarks/peers.py`` serve, captured from the simulated microservices.

It starts ``backends.simulated`` in-process (seeded, no latency), sends exactly the backend
calls Frontdoor makes for one ``/play`` and one ``/home`` (paths from
orchestrator/apis/playback/endpoints.py, home.py and shaping.py; bodies as their request builders
build them), and stores each reply by path. Only needed when the simulated services or
Frontdoor's backend contracts change:

    .venv/bin/python benchmarks/peers/capture.py
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402 - gevent patches first
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from backends.simulated import SimulatedBackends  # noqa: E402

HERE = Path(__file__).resolve().parent
MEMBER = "m1"
TITLE = "t42"
DEVICE = "tv-samsung-2024"
# Home page shape: 3 x 4 = 12 cards, 11 distinct titles (a top title is also recommended
# because of another): one catalog batch (<= 500 ids) and one ratings call.
ROWS = 3
PER_ROW = 4
BOOKMARK_S = 1234
# The catalog attributes home v1 asks for (orchestrator/apis/discovery/home.py, _V1_CARD).
CARD_FIELDS = "title,year,genres,maturity_rating,boxart"


def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback simulated services
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def capture(base: str) -> dict[str, Any]:
    """The replies, keyed by path (query strings are not part of the key)."""
    replies: dict[str, Any] = {}

    def keep(method: str, path: str, body: Any = None, query: str = "") -> Any:
        reply = _call(base, method, path + query, body)
        replies[path] = {"method": method, "body": reply}
        return reply

    member = keep("GET", f"/subscriber/members/{MEMBER}")
    device = keep("GET", f"/device/devices/{DEVICE}")
    # A saved position, so play resumes somewhere (the write itself is not benchmarked).
    _call(base, "PUT", f"/bookmarks/{MEMBER}/{TITLE}", {"position_s": BOOKMARK_S})
    keep("GET", f"/bookmarks/{MEMBER}/{TITLE}")
    decision = {
        "member_id": MEMBER,
        "title_id": TITLE,
        "device_type": DEVICE,
        "plan_id": member["plan_id"],
        "country": member["country"],
    }
    keep("POST", "/playback/decisions", decision)
    licence = {"member_id": MEMBER, "title_id": TITLE, "drm": device["drm"], "device_type": DEVICE}
    keep("POST", "/licensing/licenses", licence)

    rows = keep("GET", f"/recommendations/rows/{MEMBER}", query=f"?rows={ROWS}&per_row={PER_ROW}")
    ids = list(dict.fromkeys(v for row in rows["rows"] for v in row["video_ids"][:PER_ROW]))
    joined = ",".join(ids)
    keep("GET", "/catalog/titles", query=f"?ids={joined}&fields={CARD_FIELDS}")
    keep("GET", f"/ratings/match/{MEMBER}", query=f"?ids={joined}")
    return replies


def main() -> None:
    """Capture the replies and write bodies.json next to this script."""
    backends = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    try:
        replies = capture(backends.url)
    finally:
        backends.stop()
    document = {
        "about": "Backend replies for benchmarks/peers.py, captured from backends.simulated "
        "by benchmarks/peers/capture.py.",
        "request": {
            "member_id": MEMBER,
            "title_id": TITLE,
            "device_type": DEVICE,
            "rows": ROWS,
            "per_row": PER_ROW,
        },
        "replies": replies,
    }
    out = HERE / "bodies.json"
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    for path, reply in replies.items():
        size = len(json.dumps(reply["body"], separators=(",", ":")))
        print(f"{reply['method']:4} {path:36} {size:5} bytes")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
