"""What every service handler reads: the seeded world, the run-time store, and lookups that
answer 404 for unknown ids."""

from __future__ import annotations

from dataclasses import dataclass

from backends.simulated.catalogue import Title
from backends.simulated.data import World
from backends.simulated.exchange import not_found
from backends.simulated.members import Member
from backends.simulated.store import Store


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """The world and store shared by the services of one simulated deployment."""

    world: World
    store: Store

    def member(self, member_id: str) -> Member:
        """A generated or created member; ``HttpError(404)`` for unknown ids."""
        member = self.world.members.get(member_id) or self.store.account(member_id)
        if member is None:
            raise not_found("unknown member")
        return member

    def title(self, title_id: str) -> Title:
        """A catalogue title; ``HttpError(404)`` for unknown ids."""
        title = self.world.catalogue.get(title_id)
        if title is None:
            raise not_found("unknown title")
        return title
