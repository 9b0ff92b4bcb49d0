"""The queue policy of routing, as pure functions of what the database holds: no database here,
so the rules can be read and tested on their own (tests/annotator/test_queue.py).

:func:`annotator.annotation.reads.queue_rows` reads one :class:`QueueRow` per sampled item in
the annotator's languages; :mod:`annotator.annotation.routing` turns each into an :class:`ItemView`
(the state of both slots as this annotator sees them) and claims in the order
:func:`routing_order` gives; the rules themselves are stated in routing's module docstring.
"""

from __future__ import annotations

import zlib
from collections import Counter, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

__all__ = [
    "ItemView",
    "QueueRow",
    "aware_utc",
    "item_view",
    "routing_order",
    "slot_state",
    "stratum_priority",
]


def aware_utc(value: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive datetimes (stored as UTC) and callers may pass naive."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class QueueRow(NamedTuple):
    item_id: int
    completion_id: str
    stratum: str
    query_language: str
    queue_position: int
    double_annotate: bool
    a1_id: int | None
    a1_who: int | None
    a1_status: str | None
    a1_expires: datetime | None
    a2_id: int | None
    a2_who: int | None
    a2_status: str | None
    a2_expires: datetime | None
    my_annotation: int | None


def slot_state(status: str | None, who: int | None, expires: datetime | None, me: int, now: datetime) -> str:
    """One slot as seen by ``me``: open, done, mine, held (by someone else) or skipped_by_me."""
    if status is None or status == "released":
        return "open"
    if status == "submitted":
        return "done"
    if status == "skipped":
        return "skipped_by_me" if who == me else "open"
    if who == me:
        return "mine"
    return "held" if expires is None or aware_utc(expires) >= now else "open"


class ItemView(NamedTuple):
    row: QueueRow
    slot1: str
    slot2: str | None
    involved: bool  # I labeled this completion (in any sample): not offered to me again

    @property
    def needs_work(self) -> bool:
        return self.slot1 != "done" or (self.slot2 is not None and self.slot2 != "done")

    @property
    def offer(self) -> int | None:
        """The slot offered to me, if any."""
        if self.involved:
            return None
        if self.slot1 == "open":
            return 1
        if self.slot1 == "done" and self.slot2 == "open":
            return 2
        return None

    @property
    def held_by_others(self) -> bool:
        return not self.involved and (self.slot1 == "held" or (self.slot1 == "done" and self.slot2 == "held"))


def item_view(row: QueueRow, me: int, now: datetime) -> ItemView:
    slot1 = slot_state(row.a1_status, row.a1_who, row.a1_expires, me, now)
    slot2 = slot_state(row.a2_status, row.a2_who, row.a2_expires, me, now) if row.double_annotate else None
    # Held or skipped slots are excluded by their state; a label of mine, by this flag. Slot 2
    # opens only after slot 1 is done, so no other combination can offer me both slots.
    return ItemView(row, slot1, slot2, row.my_annotation is not None)


def stratum_priority(stratum: str, taken: int, items: int) -> tuple[bool, float, int]:
    """Routing serves the stratum with the smallest key next (see the module docstring).

    Ties go by a hash, not by name: names sort a benchmark's strata together, so the first pass
    would serve whole benchmarks (and so arms) before the others. With the sampler's model x
    image strata, the paper-size demo has no arm without a label after 10 % of the labels
    (``benchmarks/bench_allocation.py``).
    """
    return taken > 0, (taken + 0.5) / items, zlib.crc32(stratum.encode("utf-8"))


def routing_order(views: list[ItemView]) -> Iterator[tuple[ItemView, int]]:
    """Offers in routing order, lazily: open second labels first, then slot 1 from the stratum
    :func:`stratum_priority` picks (recomputed as offers are handed out), by queue position."""
    items: Counter[str] = Counter()
    taken: Counter[str] = Counter()
    for view in views:
        items[view.row.stratum] += 1
        taken[view.row.stratum] += view.slot1 in ("done", "held", "mine")

    def share(stratum: str) -> tuple[bool, float, int]:
        return stratum_priority(stratum, taken[stratum], items[stratum])

    seconds = [view for view in views if view.offer == 2]
    seconds.sort(key=lambda view: (*share(view.row.stratum), view.row.queue_position))
    yield from ((view, 2) for view in seconds)
    queues: dict[str, deque[ItemView]] = {}
    for view in sorted((view for view in views if view.offer == 1), key=lambda view: view.row.queue_position):
        queues.setdefault(view.row.stratum, deque()).append(view)
    while queues:
        stratum = min(queues, key=share)
        view = queues[stratum].popleft()
        if not queues[stratum]:
            del queues[stratum]
        taken[stratum] += 1  # whether this caller wins it or a concurrent one does
        yield view, 1
