"""Request collapsing: by-ids reads of concurrent requests go out as one backend call.

A ``Call`` whose request carries the backend's ids parameter (``CollapseSettings``) joins
the open batch of calls that differ only in their ids (same method, path, other query and
headers). The first member opens the batch and a timer of ``window_ms``; when it fires (or
the next member would take the batch past ``max_ids`` distinct ids) the batch goes out as
one call for the union of the ids, and its reply is split back: each member gets the items
of its own ids, in the reply's order, relabelled with its own ``call_id``.

Errors reach the members the backend failed: a failed merged call (5xx, timeout,
rejection) fails every member, since the backend answered none of them; a refusal (4xx)
of a batch of two or more says some ids were wrong without saying which, so each member is
asked again alone and only the wrong ones fail. Ids the backend does not know are simply
absent from their member's items, as they are without collapsing.

``Window`` is the pure grouping logic; ``Collapser`` is the thin glue (a hub timer per open
batch, submit, split). Never does: wait, or hold a call past its batch's flush.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent
import pykka

from actors.messages import Call, Reply, ReplyTarget
from backends.specs import CollapseSettings
from backends.transport import BackendRequest

_MS_PER_S = 1000.0


class Directory(Protocol):
    """Where a batch's call goes: the actor system (``actors.supervisor.BackendDirectory``)."""

    def submit(self, call: Call) -> Reply | None:
        """Tell ``call`` to its backend, or return its rejection now."""
        ...


#: A batch's identity: the request with its ids left out.
GroupKey = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class Member:
    """One call in a batch, with its ids."""

    call: Call
    ids: tuple[str, ...]


@dataclass(slots=True)
class Batch:
    """Calls that will go out as one: their members and the union of their ids."""

    key: GroupKey
    members: list[Member] = field(default_factory=list)
    #: Distinct ids in first-asked order (a dict keeps order and de-duplicates).
    ids: dict[str, None] = field(default_factory=dict)

    def fits(self, ids: Iterable[str], max_ids: int) -> bool:
        """Whether ``ids`` join without taking the batch past ``max_ids`` distinct ids."""
        known = self.ids
        return len(known) + sum(1 for item in set(ids) if item not in known) <= max_ids


class Window:
    """The pure grouping: which calls join which batch, and when a batch must go now."""

    __slots__ = ("_max_ids", "_open", "_param")

    def __init__(self, settings: CollapseSettings) -> None:
        self._param = settings.ids_param
        self._max_ids = settings.max_ids
        self._open: dict[GroupKey, Batch] = {}

    def split_ids(self, request: BackendRequest) -> tuple[GroupKey, tuple[str, ...]] | None:
        """The group and ids of a collapsible request, or ``None`` (not a by-ids read)."""
        if request.method != "GET" or request.body is not None:
            return None
        ids: tuple[str, ...] | None = None
        rest: list[tuple[str, str]] = []
        for name, value in request.query:
            if name == self._param and ids is None:
                ids = tuple(item for item in value.split(",") if item)
            else:
                rest.append((name, value))
        if not ids:
            return None
        return (request.method, request.path_segments, tuple(rest), request.headers), ids

    def add(self, key: GroupKey, member: Member) -> tuple[Batch, Batch | None, bool]:
        """Put ``member`` in its group's open batch.

        Returns ``(batch, full, opened)``: the batch ``member`` joined; ``full``, a batch that
        must go now because ``member`` would not fit in it (``member`` opened a new one);
        ``opened``, whether ``member`` opened its batch (its caller arms the window's timer).
        """
        full: Batch | None = None
        batch = self._open.get(key)
        if batch is not None and not batch.fits(member.ids, self._max_ids):
            full = self._open.pop(key)
            batch = None
        opened = batch is None
        if batch is None:
            batch = Batch(key)
            self._open[key] = batch
        batch.members.append(member)
        batch.ids.update(dict.fromkeys(member.ids))
        return batch, full, opened

    def take(self, key: GroupKey, batch: Batch) -> bool:
        """Close ``batch`` (its window ended); ``False`` if it had already gone (full)."""
        if self._open.get(key) is batch:
            del self._open[key]
            return True
        return False

    def merged_request(self, batch: Batch) -> BackendRequest:
        """The one request of a batch: its group's request with the union of the ids."""
        method, segments, rest, headers = batch.key
        query = tuple(sorted((*rest, (self._param, ",".join(batch.ids)))))
        return BackendRequest(method, segments, query, None, headers)


def split_value(value: Any, ids: tuple[str, ...], settings: CollapseSettings) -> Any:
    """A member's share of a merged reply: the items of its ``ids``, in the reply's order.

    A reply not shaped as the settings say is handed whole to every member (their own
    parsing then reads it as it would have read their own reply, ignoring other ids)."""
    if not isinstance(value, dict):
        return value
    items = value.get(settings.items_key)
    if not isinstance(items, list):
        return value
    wanted = set(ids)
    id_key = settings.id_key
    mine = [item for item in items if isinstance(item, dict) and item.get(id_key) in wanted]
    share = dict(value)
    share[settings.items_key] = mine
    return share


class Collapser:
    """One backend's collapsing, across the requests of a process; see the module docstring.

    ``submit`` takes the place of the directory's for the calls it collapses; the batch's
    call goes to ``directory`` with the batch as ``reply_to``.

    Counted since start, O(1) each (the operator views read them, ``actors/system.py``):
    ``members``, the calls handed in; ``calls``, the calls sent on for them (one per batch,
    plus one per member asked again alone after a refused batch); ``merged``, the batches of
    two or more sent as one call; ``alone``, the batches of one. ``saved`` is the difference.
    """

    def __init__(
        self,
        settings: CollapseSettings,
        directory: Directory,
        clock: Callable[[], float],
        *,
        arm: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.settings = settings
        self._window = Window(settings)
        self._directory = directory
        self._clock = clock
        self._window_s = settings.window_ms / _MS_PER_S
        self._arm = _arm_hub_timer if arm is None else arm
        self.calls = 0
        self.members = 0
        self.merged = 0
        self.alone = 0

    @property
    def saved(self) -> int:
        """Calls the backend did not get thanks to collapsing: ``members - calls``."""
        return self.members - self.calls

    def collapsible(self, call: Call) -> tuple[GroupKey, tuple[str, ...]] | None:
        """The group and ids of ``call`` when it can be collapsed, else ``None``.

        A call that keeps its last good value is not: that value is kept under the call's
        own request key, which a merged call does not have."""
        if call.keep_last_good:
            return None
        return self._window.split_ids(call.request)

    def submit(self, call: Call, found: tuple[GroupKey, tuple[str, ...]]) -> None:
        """Add ``call`` (``found`` by ``collapsible``) to its batch; the reply comes later."""
        key, ids = found
        batch, full, opened = self._window.add(key, Member(call, ids))
        if full is not None:
            self._flush(full)
        if opened:
            self._arm(self._window_s, lambda: self._window_ended(key, batch))

    def _window_ended(self, key: GroupKey, batch: Batch) -> None:
        if self._window.take(key, batch):
            self._flush(batch)

    def _flush(self, batch: Batch) -> None:
        members = batch.members
        self.members += len(members)
        self.calls += 1
        if len(members) == 1:
            # Nothing to merge: the member's own call, answered straight to its caller.
            self.alone += 1
            _submit_or_answer(self._directory, members[0].call)
            return
        self.merged += 1
        first = members[0].call
        merged = Call(
            call_id=0,
            backend=first.backend,
            request=self._window.merged_request(batch),
            # No member is cut short; a member whose own deadline passes times out in its
            # own supervisor.
            deadline=max(member.call.deadline for member in members),
            request_id=first.request_id,
            reply_to=_Split(self, batch),
            sent_at=self._clock(),
        )
        rejection = self._directory.submit(merged)
        if rejection is not None:
            for member in members:
                _tell(member.call.reply_to, _relabelled(rejection, member.call.call_id))

    def answer(self, batch: Batch, reply: Reply) -> None:
        """The merged call's reply: each member's share, or the failure it shares."""
        members = batch.members
        if reply.outcome.ok:
            for member in members:
                value = split_value(reply.value, member.ids, self.settings)
                share = dataclasses.replace(reply, call_id=member.call.call_id, value=value)
                _tell(member.call.reply_to, share)
            return
        if 400 <= reply.status < 500:  # noqa: PLR2004 - the client-error class
            # The backend refused the batch without naming the ids at fault: ask each alone.
            self.calls += len(members)
            for member in members:
                _submit_or_answer(self._directory, member.call)
            return
        for member in members:
            _tell(member.call.reply_to, _relabelled(reply, member.call.call_id))


@dataclass(frozen=True, slots=True)
class _Split:
    """The ``reply_to`` of a merged call: hands its reply to the collapser to split."""

    collapser: Collapser
    batch: Batch

    def tell(self, message: Any) -> None:
        """The backend actor's one reply to the merged call."""
        self.collapser.answer(self.batch, message)


def _submit_or_answer(directory: Directory, call: Call) -> None:
    rejection = directory.submit(call)
    if rejection is not None:
        _tell(call.reply_to, rejection)


def _relabelled(reply: Reply, call_id: int) -> Reply:
    return reply if reply.call_id == call_id else dataclasses.replace(reply, call_id=call_id)


def _tell(target: ReplyTarget, reply: Reply) -> None:
    """A supervisor that already answered has stopped: its share goes nowhere."""
    with contextlib.suppress(pykka.ActorDeadError):
        target.tell(reply)


def _arm_hub_timer(delay_s: float, callback: Callable[[], None]) -> Any:
    """A raw loop timer: its callback only submits and tells, never blocks."""
    timer = gevent.get_hub().loop.timer(delay_s)

    def fire() -> None:
        timer.close()
        callback()

    timer.start(fire)
    return timer
