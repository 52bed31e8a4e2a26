"""Shared calls: identical backend reads inside one request, or one batch, are made once.

``SharedCalls`` is the ``BackendDirectory`` of one scope's supervisors (a request, or every
call of a batch), in front of the actor system. The first ``Call`` for a (backend, request
key) goes on to the system with the scope's entry as ``reply_to``; identical calls
submitted while it runs wait on that entry, and calls submitted after it succeeded get its
reply at once. Each waiting supervisor gets the one ``Reply`` relabelled with its own
``call_id``, so every ``Call`` is still answered exactly once.

Only safe reads (GET, HEAD) are shared: two identical writes in a batch are two actions.
A failed or rejected call is not kept, so a later identical call in the scope tries again.
Identical calls share the first caller's deadline, which in a batch is bounded by the
batch's own. Never does: wait, or outlive its scope (it is dropped with its request).
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref

import pykka

from actors.messages import Call, Reply, ReplyTarget
from actors.supervisor import Adaptations, BackendDirectory, adaptations

__all__ = ["SHAREABLE_METHODS", "SharedCalls"]

#: Methods whose identical calls are made once per scope.
SHAREABLE_METHODS = frozenset({"GET", "HEAD"})

_Key = tuple[str, str]


class SharedCalls:
    """One scope's directory: the actor system's, with identical reads made once."""

    def __init__(self, directory: BackendDirectory) -> None:
        self._directory = directory
        self._entries: dict[_Key, _Entry] = {}
        #: Calls passed on to the backends, and calls answered with another call's reply.
        self.made = 0
        self.shared = 0

    @property
    def adaptations(self) -> Adaptations | None:
        """The hedging and collapsing of the directory behind (``supervisor.adaptations``):
        hedges and merged calls go to it directly, past this scope's sharing."""
        return adaptations(self._directory)

    def submit(self, call: Call) -> Reply | None:
        """Pass ``call`` on, or attach it to an identical one; a rejection is returned now."""
        if call.request.method not in SHAREABLE_METHODS:
            self.made += 1
            return self._directory.submit(call)
        key = (call.backend, call.request.key())
        entry = self._entries.get(key)
        if entry is not None:
            self.shared += 1
            entry.add(call.reply_to, call.call_id)
            return None
        entry = _Entry(self, key)
        # The first caller's call id goes along, so its reply needs no relabelling.
        forwarded = Call(
            call.call_id,
            call.backend,
            call.request,
            call.deadline,
            call.request_id,
            entry,
            call.sent_at,
            call.keep_last_good,
        )
        rejection = self._directory.submit(forwarded)
        if rejection is not None:
            # Nothing can have attached in between (no switch happens here): just answer.
            return rejection
        self.made += 1
        entry.add(call.reply_to, call.call_id)
        self._entries[key] = entry
        return None

    def _forget(self, key: _Key) -> None:
        self._entries.pop(key, None)


class _Entry:
    """One shared call: who waits for it, and its reply once it came back successfully."""

    def __init__(self, owner: SharedCalls, key: _Key) -> None:
        # Weak: the owner holds its entries, and a cycle would keep every decoded reply
        # alive until a full garbage collection (a 50-80 ms pause every few seconds).
        self._owner = weakref.ref(owner)
        self._key = key
        self._waiting: list[tuple[ReplyTarget, int]] = []
        self._reply: Reply | None = None

    def add(self, reply_to: ReplyTarget, call_id: int) -> None:
        """Answer ``reply_to`` with the reply: now if it is here, else when it arrives."""
        if self._reply is not None:
            _tell(reply_to, _relabelled(self._reply, call_id))
        else:
            self._waiting.append((reply_to, call_id))

    def tell(self, reply: Reply) -> None:
        """The backend's one reply: pass it to every waiter; keep it only if it succeeded."""
        waiting, self._waiting = self._waiting, []
        if reply.outcome.ok:
            self._reply = reply
        else:
            owner = self._owner()
            if owner is not None:
                owner._forget(self._key)  # noqa: SLF001 - an entry belongs to its scope
        for reply_to, call_id in waiting:
            _tell(reply_to, _relabelled(reply, call_id))


def _relabelled(reply: Reply, call_id: int) -> Reply:
    """``reply`` as the answer to ``call_id`` (the same object when it already is)."""
    return reply if reply.call_id == call_id else dataclasses.replace(reply, call_id=call_id)


def _tell(target: ReplyTarget, reply: Reply) -> None:
    """A supervisor that already answered (its deadline passed) has stopped: that is fine."""
    with contextlib.suppress(pykka.ActorDeadError):
        target.tell(reply)
