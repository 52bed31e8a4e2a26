"""``bin/loadtest replay``: record device traffic, replay it against one or two targets,
report how the responses differ (docs/replay.md).

    bin/loadtest replay record --listen 127.0.0.1:8070 --target http://127.0.0.1:8080 \\
        --out rec.jsonl --keep-responses
    bin/loadtest replay convert frontdoor.log --out rec.jsonl   # Frontdoor's access log
    bin/loadtest replay run rec.jsonl --target http://127.0.0.1:8080 \\
        --target http://127.0.0.1:8081

``run`` sends each recorded request open loop at its recorded time divided by --rate-scale
(to both targets at once), signs a member token of its own for requests that carried one
(Frontdoor's secret from --config or FRONTDOOR_AUTH_TOKEN_SECRET; or --token for all),
and compares per request the status, the media type and the JSON body after normalising
it: the volatile fields (--ignore, on top of DEFAULT_IGNORE) are dropped, and arrays
declared unordered (--unordered) are sorted. With one --target, each request is compared
with its recorded response (a body when the recording kept one, else the status).

JSON paths: $ the body, .name a key, [N] an index, [*] or .* every element, ..name that
key at any depth; e.g. $..request_id  $.rows[*].trace  $.meta.degraded

Exit codes:
  0    every compared request matched
  1    tool error: a target did not answer /healthz (nothing was sent), nothing could
       be compared, or the recording proxy could not listen
  2    usage error: bad arguments or an unreadable recording
  99   at least one request differed (including a target that gave no response)
  130  interrupted (Ctrl-C); the partial report is printed
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

from orchestrator.loadtest.recording import RecordedRequest, Recording
from orchestrator.loadtest.target import Target

if TYPE_CHECKING:  # the client imports gevent, which the entry point patches first
    from orchestrator.loadtest.client import HttpClient

__all__ = [
    "DEFAULT_IGNORE",
    "DEFAULT_UNORDERED",
    "EXIT_DIFFERENCES",
    "Difference",
    "JsonPath",
    "Outcome",
    "compare",
    "main",
    "normalise",
    "parse_path",
    "route_of",
]

EXIT_OK: Final = 0
EXIT_TOOL: Final = 1
EXIT_USAGE: Final = 2
#: At least one request differed (loadtest's code for a failed gate).
EXIT_DIFFERENCES: Final = 99
EXIT_INTERRUPTED: Final = 130

#: Fields that differ between any two answers to the same request: ids, times, tokens.
DEFAULT_IGNORE: Final = (
    "$..request_id",
    "$..token",
    "$..generated_at",
    "$..timestamp",
    "$..expires_at",
    "$..ends_at",
    "$..watched_at",
)
#: Arrays whose order carries no meaning.
DEFAULT_UNORDERED: Final = ("$.meta.degraded",)
#: Most changed JSON paths listed per difference, and diff lines shown per difference.
_MAX_PATHS: Final = 20
_MAX_DIFF_LINES: Final = 60
#: Differences kept in the JSON report.
_MAX_JSON_DIFFERENCES: Final = 1000


# ---------------------------------------------------------------------------------------
# JSON paths and normalisation (pure).


class PathError(ValueError):
    """A JSON path this tool does not understand."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path: segments of ``("key", name)``, ``("index", n)``, ``("each", None)``
    and ``("deep", name)``."""

    text: str
    segments: tuple[tuple[str, Any], ...]


_SEGMENT: Final = re.compile(
    r"\.\.(?P<deep>[A-Za-z0-9_-]+)|\.(?P<key>[A-Za-z0-9_-]+)|\.\*|\[\*\]"
    r"|\[(?P<index>-?\d+)\]|\[['\"](?P<quoted>[^'\"]+)['\"]\]"
)


def parse_path(text: str) -> JsonPath:
    """Parse ``$.a[*].b``-style paths; ``PathError`` on anything else."""
    if not text.startswith("$"):
        raise PathError(f"{text!r}: a JSON path starts with $")
    segments: list[tuple[str, Any]] = []
    position = 1
    while position < len(text):
        found = _SEGMENT.match(text, position)
        if found is None:
            raise PathError(f"{text!r}: cannot read from {text[position:]!r}")
        if found["deep"] is not None:
            segments.append(("deep", found["deep"]))
        elif found["key"] is not None or found["quoted"] is not None:
            segments.append(("key", found["key"] or found["quoted"]))
        elif found["index"] is not None:
            segments.append(("index", int(found["index"])))
        else:
            segments.append(("each", None))
        position = found.end()
    if not segments:
        raise PathError(f"{text!r}: names the whole body; compare its status instead")
    return JsonPath(text, tuple(segments))


def _matches(node: Any, kind: str, arg: Any) -> list[Any]:
    """The keys (or indices) of ``node`` one segment selects."""
    if isinstance(node, dict):
        if kind == "key":
            return [arg] if arg in node else []
        return list(node) if kind == "each" else []
    if isinstance(node, list):
        if kind == "index":
            return [arg % len(node)] if -len(node) <= arg < len(node) else []
        return list(range(len(node))) if kind == "each" else []
    return []


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    return list(node) if isinstance(node, list) else []


def _drop(node: Any, segments: tuple[tuple[str, Any], ...]) -> None:
    kind, arg = segments[0]
    if kind == "deep":
        for child in _children(node):
            _drop(child, segments)
        _drop(node, (("key", arg), *segments[1:]))
        return
    keys = _matches(node, kind, arg)
    if len(segments) > 1:
        for key in keys:
            _drop(node[key], segments[1:])
        return
    for key in sorted(keys, reverse=True):  # from the end: list indices stay valid
        del node[key]


def _sort(node: Any, segments: tuple[tuple[str, Any], ...]) -> None:
    if not segments:
        if isinstance(node, list):
            node.sort(key=_canonical)
        return
    kind, arg = segments[0]
    if kind == "deep":
        for child in _children(node):
            _sort(child, segments)
        _sort(node, (("key", arg), *segments[1:]))
        return
    for key in _matches(node, kind, arg):
        _sort(node[key], segments[1:])


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def normalise(
    body: Any, ignore: Iterable[JsonPath] = (), unordered: Iterable[JsonPath] = ()
) -> Any:
    """A decoded JSON body without its ``ignore`` fields, with the ``unordered`` arrays
    sorted (after the drop, so that volatile fields do not decide the order). A copy."""
    copy = json.loads(json.dumps(body))
    for path in ignore:
        _drop(copy, path.segments)
    for path in unordered:
        _sort(copy, path.segments)
    return copy


def changed_paths(a: Any, b: Any, where: str = "$") -> list[str]:
    """The JSON paths at which two normalised bodies differ, depth first."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[str] = []
        for key in sorted(set(a) | set(b)):
            here = f"{where}.{key}" if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f"{where}[{key!r}]"
            if key not in a or key not in b:
                found.append(here)
            else:
                found.extend(changed_paths(a[key], b[key], here))
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = [] if len(a) == len(b) else [f"{where} (length {len(a)} vs {len(b)})"]
        for index, (left, right) in enumerate(zip(a, b, strict=False)):
            found.extend(changed_paths(left, right, f"{where}[{index}]"))
        return found
    return [] if a == b else [where]


# ---------------------------------------------------------------------------------------
# Comparing two outcomes (pure).


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one target answered: ``status`` None with ``error`` when it gave no response;
    ``body`` None when unknown (a recording that kept only the status)."""

    status: int | None
    content_type: str = ""
    body: bytes | None = None
    error: str | None = None

    @property
    def media_type(self) -> str:
        """The content type without its parameters, lower case."""
        return self.content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Difference:
    """How two outcomes of one request differ: ``kind`` is ``no_response``, ``status``,
    ``content_type`` or ``body``; ``paths`` the changed JSON paths; ``diff`` a unified diff
    of the normalised bodies (or of the raw ones when not JSON)."""

    kind: str
    paths: tuple[str, ...] = ()
    diff: tuple[str, ...] = ()


def _decoded(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except ValueError:
        return False, body.decode("utf-8", "replace")


def compare(
    a: Outcome,
    b: Outcome,
    *,
    ignore: Sequence[JsonPath] = (),
    unordered: Sequence[JsonPath] = (),
    labels: tuple[str, str] = ("A", "B"),
) -> Difference | None:
    """The difference between two outcomes of one request, or None when they match."""
    head = _head_difference(a, b, labels)
    if head is not None or a.body is None or b.body is None:
        return head  # without both bodies (a status-only recording) the head is all there is
    a_json, left = _decoded(a.body)
    b_json, right = _decoded(b.body)
    if a_json and b_json:
        left, right = normalise(left, ignore, unordered), normalise(right, ignore, unordered)
        if left == right:
            return None
        paths = changed_paths(left, right)
        left_lines = json.dumps(left, indent=2, sort_keys=True).splitlines()
        right_lines = json.dumps(right, indent=2, sort_keys=True).splitlines()
    else:
        if a_json == b_json and left == right:
            return None
        paths = []
        left_lines, right_lines = str(left).splitlines(), str(right).splitlines()
    lines = difflib.unified_diff(left_lines, right_lines, labels[0], labels[1], n=2, lineterm="")
    return Difference("body", tuple(paths[:_MAX_PATHS]), tuple(lines)[:_MAX_DIFF_LINES])


def _head_difference(a: Outcome, b: Outcome, labels: tuple[str, str]) -> Difference | None:
    """A missing response (on either side: a request that got none never passes), another
    status or, with both bodies, another media type."""
    if a.status is None or b.status is None:
        errors = (a.error or a.status, b.error or b.status)
        return Difference(
            "no_response", diff=(f"{labels[0]}: {errors[0]}", f"{labels[1]}: {errors[1]}")
        )
    for kind, left, right in (
        ("status", a.status, b.status),
        ("content_type", a.media_type, b.media_type),
    ):
        if left != right and (kind == "status" or None not in (a.body, b.body)):
            return Difference(kind, diff=(f"{labels[0]}: {left}", f"{labels[1]}: {right}"))
    return None


_ID_SEGMENT: Final = re.compile(r"[0-9]")


def route_of(method: str, path: str) -> str:
    """A request's group in the report: method and path without the query, with every
    segment that holds a digit (an id) as ``{id}``: ``GET /v1/discovery/titles/{id}``."""
    segments = path.split("?", 1)[0].split("/")
    shown = [
        "{id}" if index > 2 and _ID_SEGMENT.search(segment) else segment  # noqa: PLR2004 - /v1/<family>
        for index, segment in enumerate(segments)
    ]
    return f"{method} {'/'.join(shown)}"


# ---------------------------------------------------------------------------------------
# The report (pure).


@dataclass
class Result:
    """One replayed request: its outcomes per target and its difference, if any."""

    index: int
    request: RecordedRequest
    outcomes: tuple[Outcome, ...]
    difference: Difference | None


@dataclass
class Tally:
    """Counts of one route (or of all)."""

    count: int = 0
    same: int = 0
    differ: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    #: Not sent: the run stopped first (--duration, Ctrl-C) or --max-inflight was reached.
    unsent: int = 0
    #: Sent nowhere: one target, and the recording has no response to compare with.
    unchecked: int = 0

    def add(self, result: Result | None, *, checked: bool = True) -> None:
        """Count one request: None when it was never sent."""
        self.count += 1
        if result is None:
            self.unsent += 1
        elif not checked:
            self.unchecked += 1
        elif result.difference is None:
            self.same += 1
        else:
            self.differ += 1
            self.kinds[result.difference.kind] += 1

    def to_json(self) -> dict[str, Any]:
        """The counts as a JSON object."""
        return {
            "count": self.count,
            "same": self.same,
            "differ": self.differ,
            "by_kind": dict(sorted(self.kinds.items())),
            "unsent": self.unsent,
            "unchecked": self.unchecked,
        }


def build_report(
    run: dict[str, Any], results: Sequence[Result | None], requests: Sequence[RecordedRequest]
) -> dict[str, Any]:
    """The JSON report: ``run``, ``totals``, ``routes`` and ``differences`` (in order)."""
    totals, routes = Tally(), dict[str, Tally]()
    for request, result in zip(requests, results, strict=True):
        route = route_of(request.method, request.path)
        checked = result is None or bool(result.outcomes)
        for tally in (totals, routes.setdefault(route, Tally())):
            tally.add(result, checked=checked)
    differences = [
        _difference_json(result, run["labels"])
        for result in results
        if result is not None and result.difference is not None
    ]
    return {
        "run": run,
        "totals": totals.to_json(),
        "routes": {route: tally.to_json() for route, tally in sorted(routes.items())},
        "differences": differences[:_MAX_JSON_DIFFERENCES],
    }


def _difference_json(result: Result, labels: Sequence[str]) -> dict[str, Any]:
    assert result.difference is not None  # noqa: S101 - callers filter
    return {
        "index": result.index,
        "at_s": result.request.at_s,
        "method": result.request.method,
        "path": result.request.path,
        "route": route_of(result.request.method, result.request.path),
        "kind": result.difference.kind,
        "paths": list(result.difference.paths),
        "statuses": {
            label: outcome.status for label, outcome in zip(labels, result.outcomes, strict=True)
        },
        "diff": list(result.difference.diff),
    }


def render(report: dict[str, Any], show: int) -> str:
    """The report as text: the run, a table per route, the first ``show`` differences."""
    run, totals = report["run"], report["totals"]
    targets = "  ".join(
        f"{label}={url}" for label, url in zip(run["labels"], run["targets"], strict=True)
    )
    ignored, unordered = ", ".join(run["ignore"]) or "-", ", ".join(run["unordered"]) or "-"
    lines = [
        (
            f"== replay {run['recording']}: {run['requests']} requests over {run['span_s']:g} s "
            f"(recorded pace x{run['rate_scale']:g}); {targets}"
        ),
        f"ignored: {ignored}; unordered: {unordered}",
        (
            f"{'request':<40} {'count':>6} {'same':>6} {'differ':>6} {'status':>6} {'body':>6} "
            f"{'no-resp':>7} {'unsent':>6}"
        ),
    ]
    for route, tally in [*report["routes"].items(), ("all", totals)]:
        kinds = tally["by_kind"]
        lines.append(
            f"{route[:40]:<40} {tally['count']:>6} {tally['same']:>6} {tally['differ']:>6} "
            f"{kinds.get('status', 0):>6} {kinds.get('body', 0) + kinds.get('content_type', 0):>6} "
            f"{kinds.get('no_response', 0):>7} {tally['unsent']:>6}"
        )
    for difference in report["differences"][:show]:
        where = ": " + ", ".join(difference["paths"]) if difference["paths"] else ""
        lines += [
            "",
            (
                f"#{difference['index']} {difference['method']} {difference['path']} "
                f"(at {difference['at_s']:.3f} s): {difference['kind']} differs{where}"
            ),
            *(f"  {line}" for line in difference["diff"]),
        ]
    differ = totals["differ"]
    if differ > show:
        lines.append(f"\n... {differ - show} more (--show N, or --json FILE for all)")
    compared = totals["same"] + differ
    if totals["unchecked"]:
        lines.append(f"\nunchecked: {totals['unchecked']} requests (no recorded response)")
    if run["interrupted"]:
        lines.append("\ninterrupted: the report covers the requests sent until Ctrl-C")
    lines.append(
        f"\nreplay: {differ} of {compared} compared requests differ"
        if differ
        else f"\nreplay: no differences in {compared} compared requests"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# The command line.


class UsageError(Exception):
    """Arguments or files that make the command impossible (exit code 2)."""


def _patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout; shows each option's default when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadtest replay", description=__doc__, formatter_class=_Formatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # fmt: off
    run = commands.add_parser(
        "run", help="replay a recording against one or two targets", formatter_class=_Formatter
    )
    option = run.add_argument
    option("recording", help="a recording (JSON lines, from record or convert)")
    option("--target", action="append", required=True, metavar="URL",
           help="a base URL; give two to compare them with each other")
    option("--rate-scale", type=float, default=1.0, help="times faster than recorded")
    option("--max-requests", type=int, default=100_000, help="replay only the first N")
    option("--duration", type=float, default=3600.0, help="stop scheduling after S seconds")
    option("--ignore", action="append", default=[], metavar="PATH",
           help="a volatile JSON path, dropped before comparing (repeatable; added to "
           f"{' '.join(DEFAULT_IGNORE)})")
    option("--no-default-ignore", action="store_true", help="drop only the --ignore paths")
    option("--unordered", action="append", default=[], metavar="PATH",
           help="an array whose order does not matter (repeatable; added to "
           f"{' '.join(DEFAULT_UNORDERED)})")
    option("--show", type=int, default=5, help="differences printed with their diff")
    option("--json", metavar="FILE", help="write the report, every difference, as JSON")
    option("--token", help="send this bearer token instead of signing one per member")
    option("--member", default="m1", help="whom to sign for when a recording names no one")
    option("--config", help="Frontdoor TOML configuration, for the token secret")
    option("--timeout", type=float, default=10.0, help="per-request timeout in s")
    option("--max-inflight", type=int, default=256,
           help="requests outstanding at once; beyond, a request is unsent")
    option("--allow-remote", action="store_true", help="allow non-loopback targets")

    record = commands.add_parser(
        "record", help="a recording proxy in front of a target", formatter_class=_Formatter
    )
    option = record.add_argument
    option("--listen", default="127.0.0.1:8070", metavar="HOST:PORT",
           help="where devices connect (port 0 picks one)")
    option("--target", required=True, metavar="URL", help="Frontdoor's base URL")
    option("--out", required=True, metavar="FILE", help="the recording to write")
    option("--sample", type=float, default=1.0, help="share of requests recorded, 0 to 1")
    option("--keep-responses", action="store_true",
           help="also record each response's status, type and body")
    option("--max-requests", type=int, default=1000, help="stop after recording N requests")
    option("--duration", type=float, default=300.0, help="stop after S seconds")
    option("--seed", type=int, default=1, help="seed of the sampling")
    option("--allow-remote", action="store_true", help="allow non-loopback addresses")

    convert = commands.add_parser(
        "convert", help="a recording from Frontdoor's JSON access log", formatter_class=_Formatter
    )
    option = convert.add_argument
    option("log", help="the log (JSON lines; lines of other kinds are passed over)")
    option("--out", required=True, metavar="FILE", help="the recording to write")
    option("--member", default="m1", help="whom replay signs tokens for (the log does not say)")
    # fmt: on
    return parser


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    """``loadtest replay``; returns the exit code (see the module docstring)."""
    _patch()
    out = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace, TextIO], int] = {
        "run": _run, "record": _record, "convert": _convert,
    }[args.command]  # fmt: skip
    try:
        return command(args, out)
    except UsageError as exc:
        print(f"replay: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's own error line
        return EXIT_USAGE


def _bounded(value: float, flag: str, low: float, high: float) -> float:
    if not low <= value <= high:
        raise UsageError(f"{flag} must be from {low:g} to {high:g}")
    return value


def _target(url: str, allow_remote: bool) -> Target:
    from orchestrator.loadtest.target import TargetError, parse_target

    try:
        return parse_target(url, allow_remote=allow_remote)
    except TargetError as exc:
        raise UsageError(f"--target: {exc}") from exc


def _paths(texts: Iterable[str]) -> tuple[JsonPath, ...]:
    try:
        return tuple(parse_path(text) for text in texts)
    except PathError as exc:
        raise UsageError(str(exc)) from exc


def _convert(args: argparse.Namespace, out: TextIO) -> int:
    from orchestrator.loadtest.recording import from_access_log, write_recording

    try:
        with open(args.log, encoding="utf-8") as log:  # noqa: PTH123 - plain file
            conversion = from_access_log(log, args.member)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.log}: {exc}") from exc
    with open(args.out, "w", encoding="utf-8") as file:  # noqa: PTH123 - plain file
        write_recording(file, f"access-log:{args.log}", conversion.requests)
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(conversion.skipped.items()))
    out.write(
        f"replay: {len(conversion.requests)} requests written to {args.out}"
        f"{f'; skipped: {skipped}' if skipped else ''}\n"
    )
    return EXIT_OK if conversion.requests else EXIT_TOOL


def _record(args: argparse.Namespace, out: TextIO) -> int:
    import random
    import signal

    import gevent
    from gevent.pywsgi import WSGIServer

    from orchestrator.loadtest.recording import Capture, write_recording

    target = _target(args.target, args.allow_remote)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--listen {args.listen!r}: expected HOST:PORT")
    _target(f"http://{host}:{port}", args.allow_remote)  # the same loopback rule
    sample = _bounded(args.sample, "--sample", 0.0, 1.0)
    limit = int(_bounded(args.max_requests, "--max-requests", 1, 1_000_000))
    duration_s = _bounded(args.duration, "--duration", 0.001, 86_400)
    with open(args.out, "w", encoding="utf-8") as file:  # noqa: PTH123 - plain file
        write_recording(file, f"capture:{target.url}")
        # Sampling, not secrets: a seeded PRNG makes which requests are kept repeatable.
        rng = random.Random(args.seed)  # noqa: S311
        capture = Capture(target, file, sample, limit, args.keep_responses, rng=rng)
        server = WSGIServer((host, int(port)), capture, log=None, error_log=None)
        try:
            server.start()
        except OSError as exc:
            print(f"replay: cannot listen on {args.listen}: {exc}", file=sys.stderr)  # noqa: T201
            return EXIT_TOOL
        out.write(
            f"replay: recording proxy on http://{host}:{server.server_port} -> {target.url}\n"
        )
        out.flush()
        handler = gevent.signal_handler(signal.SIGINT, capture.done.set)
        try:
            capture.done.wait(duration_s)
        finally:
            handler.cancel()
            server.stop(timeout=5)
    out.write(
        f"replay: {capture.recorded} of {capture.forwarded} requests recorded to {args.out}\n"
    )
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class _Setup:
    recording: Recording
    requests: tuple[RecordedRequest, ...]
    targets: tuple[Target, ...]
    ignore: tuple[JsonPath, ...]
    unordered: tuple[JsonPath, ...]
    rate_scale: float
    duration_s: float
    timeout_s: float
    max_inflight: int
    authorization: Callable[[RecordedRequest], str | None]


def _prepare(args: argparse.Namespace) -> _Setup:
    from orchestrator.loadtest.recording import RecordingError, read_recording

    if len(args.target) > 2:  # noqa: PLR2004 - one or two
        raise UsageError("--target: give one or two")
    targets = tuple(_target(url, args.allow_remote) for url in args.target)
    try:
        recording = read_recording(args.recording)
    except RecordingError as exc:
        raise UsageError(str(exc)) from exc
    limit = int(_bounded(args.max_requests, "--max-requests", 1, 1_000_000))
    requests = recording.requests[:limit]
    if len(targets) == 1 and not any(r.response is not None for r in requests):
        raise UsageError(
            "one --target needs a recording with responses (record --keep-responses, or "
            "convert); give two --target to compare them with each other"
        )
    ignore = (*(() if args.no_default_ignore else DEFAULT_IGNORE), *args.ignore)
    return _Setup(
        recording,
        requests,
        targets,
        _paths(ignore),
        _paths((*DEFAULT_UNORDERED, *args.unordered)),
        _bounded(args.rate_scale, "--rate-scale", 0.001, 1000),
        _bounded(args.duration, "--duration", 0.001, 86_400),
        _bounded(args.timeout, "--timeout", 0.01, 300),
        int(_bounded(args.max_inflight, "--max-inflight", 1, 10_000)),
        _authorization(args),
    )


def _authorization(args: argparse.Namespace) -> Callable[[RecordedRequest], str | None]:
    """The Authorization header per recorded request: --token, else a token signed for
    the request's member (or --member) with Frontdoor's secret."""
    if args.token:
        fixed = f"Bearer {args.token}"
        return lambda request: fixed if request.auth else None
    from orchestrator.config import ConfigError, load_settings
    from orchestrator.frontend.auth import TokenSigner

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from exc
    signer = TokenSigner(settings.auth.token_secret.encode(), settings.auth.token_ttl_s)
    tokens: dict[str, str] = {}

    def header(request: RecordedRequest) -> str | None:
        if not request.auth:
            return None
        member = request.member or args.member
        if member not in tokens:
            tokens[member] = f"Bearer {signer.issue(member)}"
        return tokens[member]

    return header


def _run(args: argparse.Namespace, out: TextIO) -> int:
    import signal

    import gevent

    from orchestrator.loadtest.client import HttpClient, RequestError

    setup = _prepare(args)
    clients = [
        HttpClient(t, timeout_s=setup.timeout_s, max_idle=setup.max_inflight) for t in setup.targets
    ]
    try:
        for client in clients:
            try:
                client.request("GET", "/healthz")
            except RequestError as exc:
                print(  # noqa: T201 - the CLI's own error line
                    f"replay: {client.target.url} does not answer: {exc}; nothing was sent",
                    file=sys.stderr,
                )
                return EXIT_TOOL
        replayer = _Replayer(setup, clients)
        handler = gevent.signal_handler(signal.SIGINT, replayer.stop.set)
        try:
            span_s = replayer.run()
        finally:
            handler.cancel()
        results, interrupted = replayer.results, replayer.stop.is_set()
    finally:
        for client in clients:
            client.close()
    labels = ["A", "B"] if len(clients) == 2 else ["A", "recorded"]  # noqa: PLR2004
    run = {
        "recording": args.recording,
        "source": setup.recording.source,
        "requests": len(setup.requests),
        "span_s": round(span_s, 3),
        "rate_scale": setup.rate_scale,
        "labels": labels,
        "targets": [
            *(c.target.url for c in clients),
            *(["its responses"] if len(clients) == 1 else []),
        ],
        "ignore": [p.text for p in setup.ignore],
        "unordered": [p.text for p in setup.unordered],
        "interrupted": interrupted,
    }
    report = build_report(run, results, setup.requests)
    totals = report["totals"]
    code = (
        EXIT_INTERRUPTED if interrupted
        else EXIT_DIFFERENCES if totals["differ"]
        else EXIT_OK if totals["same"]
        else EXIT_TOOL
    )  # fmt: skip
    report["verdict"] = {"exit_code": code, "differences": totals["differ"]}
    out.write(render(report, max(0, args.show)) + "\n")
    out.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:  # noqa: PTH123 - plain file
            json.dump(report, file, indent=1)
    if code == EXIT_TOOL:
        print("replay: no request could be compared", file=sys.stderr)  # noqa: T201
    return code


class _Replayer:
    """Sends every request at its recorded time (scaled), to every target at once, and
    compares; ``results`` in recording order (None: not sent)."""

    def __init__(self, setup: _Setup, clients: Sequence[HttpClient]) -> None:
        import gevent.event
        import gevent.pool

        self.setup = setup
        self.clients = clients
        self.labels = ("A", "B") if len(clients) == 2 else ("A", "recorded")  # noqa: PLR2004
        self.results: list[Result | None] = [None] * len(setup.requests)
        self.stop = gevent.event.Event()
        self._pool = gevent.pool.Pool(setup.max_inflight)

    def run(self) -> float:
        """Replay until the end, --duration or ``stop``; the seconds it took."""
        started = time.perf_counter()
        for index, request in enumerate(self.setup.requests):
            offset_s = request.at_s / self.setup.rate_scale
            if offset_s > self.setup.duration_s:
                break
            if len(self.clients) == 1 and request.response is None:
                self.results[index] = Result(index, request, (), None)  # nothing to compare
                continue
            if self.stop.wait(max(0.0, started + offset_s - time.perf_counter())):
                break
            if not self._pool.full():  # else unsent: an open loop never queues
                self._pool.spawn(self._exchange, index, request)
        self._pool.join(timeout=self.setup.timeout_s + 1.0)
        self._pool.kill()
        return time.perf_counter() - started

    def _exchange(self, index: int, request: RecordedRequest) -> None:
        import gevent

        jobs = [gevent.spawn(self._send, client, request) for client in self.clients]
        try:
            gevent.joinall(jobs)
        finally:
            gevent.killall(jobs)
        outcomes = [
            job.value if job.successful() else Outcome(None, error="cancelled") for job in jobs
        ]
        if (recorded := request.response) is not None and len(self.clients) == 1:
            body = None if recorded.body is None else recorded.body.encode()
            outcomes.append(Outcome(recorded.status, recorded.content_type, body))
        difference = compare(
            outcomes[0],
            outcomes[1],
            ignore=self.setup.ignore,
            unordered=self.setup.unordered,
            labels=self.labels,
        )
        self.results[index] = Result(index, request, tuple(outcomes), difference)

    def _send(self, client: HttpClient, request: RecordedRequest) -> Outcome:
        from orchestrator.loadtest.client import RequestError

        headers = list(request.headers)
        if (authorization := self.setup.authorization(request)) is not None:
            headers.append(("Authorization", authorization))
        body = None if request.body is None else request.body.encode()
        try:
            reply = client.request(request.method, request.path, headers, body)
        except RequestError as exc:
            return Outcome(None, error=str(exc))
        return Outcome(reply.status, reply.content_type, reply.body)
