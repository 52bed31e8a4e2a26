"""The actor runtime seam: pykka's actors, run on plain gevent greenlets.

pykka 4 has only ``ThreadingActor``. Under gevent's monkey patching it works, but each of
its three runtime parts becomes a pure-Python emulation built from patched thread
primitives: a ``threading.Thread`` (with its start handshake) per actor, a
``queue.Queue`` on a patched ``Condition`` as the inbox, and a ``threading.Event`` on
patched locks as the stop flag. ``GreenletActor`` keeps pykka's actor loop, ``ActorRef``,
registry, ``tell``/``ask``/``stop`` and failure handling, and swaps those three parts for
gevent's native ones through pykka's own hooks (``_create_actor_inbox``,
``_start_actor_loop``): a raw greenlet, gevent's ``SimpleQueue`` and ``Event``. A request
starts one actor and tells a dozen messages, so this is paid on every request:
``benchmarks/actor_overhead.py`` measures it (start + tell + stop ~53 -> ~25 µs).

Only for patched processes (every entry point patches first): the parts are gevent's.
"""

from __future__ import annotations

import itertools
from typing import Any

import gevent
import gevent.event
import gevent.queue
import pykka

__all__ = ["GreenletActor"]

#: Actor URNs: unique within the process, which is all the registry needs. pykka draws a
#: uuid4 per actor (~2 µs of os.urandom) for a uniqueness across processes it never uses.
_URNS = itertools.count(1)


class GreenletActor(pykka.ThreadingActor):
    """A pykka actor whose loop runs on a raw greenlet with a native gevent inbox."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        """What ``pykka.Actor.__init__`` sets up, with gevent's parts (see the module)."""
        # Not super().__init__(): it would build the three parts this class replaces.
        self.actor_urn = f"urn:frontdoor:actor:{next(_URNS)}"
        self.actor_inbox = gevent.queue.SimpleQueue()
        # pykka types it threading.Event; gevent's has the same set/is_set/wait.
        self.actor_stopped = gevent.event.Event()
        self._actor_ref = pykka.ActorRef(self)

    def _start_actor_loop(self) -> None:
        # The loop turns every exception into pykka's failure handling, so nothing escapes
        # to the raw greenlet; a raw greenlet has no link, result or Thread bookkeeping.
        gevent.spawn_raw(self._actor_loop)
