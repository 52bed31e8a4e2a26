"""What the simulated services remember at run time: accounts, subscriptions, bookmarks.

In memory, bounded (least recently used entries are forgotten first) so hours of load
tests keep memory flat. Greenlets never switch inside these methods, so no locks.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from backends.simulated.cache import LruCache
from backends.simulated.members import HistoryEntry, Member, member_from_account
from backends.simulated.reference import GENERATED_MEMBERS

_ACCOUNTS = 200_000
_SUBSCRIPTIONS = 200_000
_BOOKMARK_MEMBERS = 100_000
_BOOKMARKS_PER_MEMBER = 500


class AccountExistsError(Exception):
    """An account with this e-mail address already exists."""


class Store:
    """Run-time state of one simulated deployment."""

    def __init__(self, seed: int, clock: Callable[[], float] = time.time) -> None:
        self._seed = seed
        self.clock = clock
        self._by_email: LruCache[str, Member] = LruCache(_ACCOUNTS)
        self._by_id: LruCache[str, Member] = LruCache(_ACCOUNTS)
        self._member_numbers = itertools.count(GENERATED_MEMBERS + 1)
        self._subscriptions: LruCache[str, dict[str, Any]] = LruCache(_SUBSCRIPTIONS)
        self._subscription_numbers = itertools.count(1)
        self._license_numbers = itertools.count(1)
        self._bookmarks: LruCache[str, dict[str, HistoryEntry]] = LruCache(_BOOKMARK_MEMBERS)

    def create_account(self, email: str, country: str, plan_id: str) -> tuple[Member, float]:
        """A new member numbered after the generated ones, and when it was created."""
        key = email.lower()
        if self._by_email.get(key) is not None:
            raise AccountExistsError(email)
        created_at = self.clock()
        member_id = f"m{next(self._member_numbers)}"
        account = {"email": key, "country": country, "plan_id": plan_id}
        member = member_from_account(self._seed, member_id, account, created_at)
        self._by_email.put(key, member)
        self._by_id.put(member_id, member)
        return member, created_at

    def account(self, member_id: str) -> Member | None:
        """A member created at run time, or None."""
        return self._by_id.get(member_id)

    def add_subscription(self, record: dict[str, Any]) -> str:
        """Remember a subscription; returns its new id."""
        subscription_id = f"sub_{next(self._subscription_numbers):08d}"
        self._subscriptions.put(subscription_id, record)
        return subscription_id

    def new_license_id(self) -> str:
        """A fresh, unique license id."""
        return f"lic_{next(self._license_numbers):010d}"

    def bookmark(self, member_id: str, title_id: str) -> HistoryEntry | None:
        """The last position written for this member and title, or None."""
        marks = self._bookmarks.get(member_id)
        return None if marks is None else marks.get(title_id)

    def set_bookmark(
        self, member_id: str, title_id: str, position_s: int, duration_s: int
    ) -> HistoryEntry:
        """Write a position; writing the position already stored changes nothing (idempotent)."""
        marks = self._bookmarks.get_or_build(member_id, lambda _: {})
        current = marks.get(title_id)
        if current is not None and current.position_s == position_s:
            return current
        entry = HistoryEntry(title_id, self.clock(), position_s, duration_s)
        marks.pop(title_id, None)
        marks[title_id] = entry
        if len(marks) > _BOOKMARKS_PER_MEMBER:
            del marks[next(iter(marks))]
        return entry

    def history(self, member: Member) -> list[HistoryEntry]:
        """Seeded history overlaid with written positions, one entry per title, newest first."""
        marks = self._bookmarks.get(member.member_id) or {}
        seeded = [entry for entry in member.history if entry.title_id not in marks]
        return sorted([*marks.values(), *seeded], key=lambda entry: -entry.watched_at)
