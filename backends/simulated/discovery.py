"""Discovery services: subscriber, recommendations, catalog (batch), ratings, search."""

from __future__ import annotations

from backends.simulated.catalogue import TITLE_FIELDS
from backends.simulated.context import ServiceContext
from backends.simulated.exchange import (
    Request,
    Response,
    allow,
    bad_request,
    not_found,
    ok,
)
from backends.simulated.projections import Projections
from backends.simulated.rows import MAX_ROWS

#: Most ids one catalog or ratings call may ask for.
MAX_BATCH = 500
MAX_PER_ROW = 100
MAX_SEARCH_LIMIT = 100
_MAX_QUERY = 200
_DEFAULT_ROWS = 10
_DEFAULT_PER_ROW = 25
_DEFAULT_SEARCH_LIMIT = 10
_PROJECTABLE = frozenset(TITLE_FIELDS)


class DiscoveryServices:
    """Handlers of the browse-and-find family."""

    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        self._world = context.world
        self._projections = Projections(context.world.catalogue)

    def subscriber(self, request: Request) -> Response:
        """``GET /subscriber/members/{member_id}``."""
        match request.segments:
            case ("members", member_id):
                allow(request, "GET")
                return ok(self._context.member(member_id).to_json())
            case _:
                raise not_found()

    def recommendations(self, request: Request) -> Response:
        """``GET /recommendations/rows/{member_id}?rows=N&per_row=M``."""
        match request.segments:
            case ("rows", member_id):
                allow(request, "GET")
                count = request.int_param("rows", _DEFAULT_ROWS, 1, MAX_ROWS)
                per_row = request.int_param("per_row", _DEFAULT_PER_ROW, 1, MAX_PER_ROW)
                member = self._context.member(member_id)
                history = self._context.store.history(member)
                rows = self._world.rows.rows(member, history, count, per_row)
                return ok({"member_id": member.member_id, "rows": rows})
            case _:
                raise not_found()

    def catalog(self, request: Request) -> Response:
        """``GET /catalog/titles?ids=...&fields=...`` (batch) and ``GET /catalog/titles/{id}``."""
        match request.segments:
            case ("titles",):
                allow(request, "GET")
                ids = request.list_param("ids", MAX_BATCH)
                # Spliced from encoded titles: the hot path does no JSON encoding.
                return Response(200, self._projections.batch(ids, self._fields(request)))
            case ("titles", title_id):
                allow(request, "GET")
                title = self._context.title(title_id)
                return Response(200, self._projections.title(title.title_id, self._fields(request)))
            case _:
                raise not_found()

    def ratings(self, request: Request) -> Response:
        """``GET /ratings/match/{member_id}?ids=t1,t2``: match percent per known title."""
        match request.segments:
            case ("match", member_id):
                allow(request, "GET")
                ids = request.list_param("ids", MAX_BATCH)
                member = self._context.member(member_id)
                scores = self._world.match_scores(member, ids)
                return ok({"member_id": member.member_id, "scores": scores})
            case _:
                raise not_found()

    def search(self, request: Request) -> Response:
        """``GET /search/query?q=...&limit=N``."""
        if request.segments != ("query",):
            raise not_found()
        allow(request, "GET")
        query = request.query.get("q", "").strip()
        if not query or len(query) > _MAX_QUERY:
            raise bad_request(f"q must be 1 to {_MAX_QUERY} characters")
        limit = request.int_param("limit", _DEFAULT_SEARCH_LIMIT, 1, MAX_SEARCH_LIMIT)
        hits = self._world.search.search(query).hits
        results = [{"id": title_id, "score": score} for title_id, score in hits[:limit]]
        return ok({"query": query, "total": len(hits), "results": results})

    def _fields(self, request: Request) -> tuple[str, ...] | None:
        raw = request.query.get("fields")
        if raw is None:
            return None
        fields = [name.strip() for name in raw.split(",") if name.strip()]
        for name in fields:
            if name not in _PROJECTABLE:
                raise bad_request(f"unknown field: {name[:40]}")
        return tuple(name for name in dict.fromkeys(fields) if name != "id")
