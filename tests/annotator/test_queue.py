"""The queue policy on its own, without a database: slot states, what is offered to whom, and
the routing order across strata (the rules of annotator/annotation/routing.py's docstring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from annotator.annotation.queue import QueueRow, item_view, routing_order, slot_state, stratum_priority

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ME, OTHER = 1, 2


def row(
    item_id: int,
    stratum: str = "mmmu|deu",
    position: int = 0,
    *,
    double: bool = False,
    slot1: tuple[str, int, datetime] | None = None,
    slot2: tuple[str, int, datetime] | None = None,
    mine: bool = False,
) -> QueueRow:
    """One sampled item as the queue read returns it; a slot is (status, who, lease expiry)."""
    status1, who1, expires1 = slot1 or (None, None, None)
    status2, who2, expires2 = slot2 or (None, None, None)
    return QueueRow(
        item_id,
        f"c{item_id}",
        stratum,
        "deu",
        position,
        double,
        item_id * 10 if slot1 else None,
        who1,
        status1,
        expires1,
        item_id * 10 + 1 if slot2 else None,
        who2,
        status2,
        expires2,
        item_id * 100 if mine else None,
    )


@pytest.mark.parametrize(
    ("status", "who", "expires", "state"),
    [
        (None, None, None, "open"),
        ("released", OTHER, NOW + timedelta(minutes=5), "open"),
        ("submitted", OTHER, NOW - timedelta(days=1), "done"),
        ("skipped", ME, NOW + timedelta(minutes=5), "skipped_by_me"),
        ("skipped", OTHER, NOW + timedelta(minutes=5), "open"),
        ("claimed", ME, NOW - timedelta(minutes=5), "mine"),
        ("claimed", OTHER, NOW + timedelta(minutes=5), "held"),
        ("claimed", OTHER, NOW - timedelta(seconds=1), "open"),
        # SQLite hands back naive datetimes, stored as UTC.
        ("claimed", OTHER, (NOW + timedelta(minutes=5)).replace(tzinfo=None), "held"),
        ("claimed", OTHER, (NOW - timedelta(minutes=5)).replace(tzinfo=None), "open"),
    ],
)
def test_a_slot_as_one_annotator_sees_it(status, who, expires, state) -> None:
    assert slot_state(status, who, expires, ME, NOW) == state


def test_what_is_offered_to_whom() -> None:
    lease = NOW + timedelta(minutes=30)
    fresh = item_view(row(1), ME, NOW)
    assert (fresh.offer, fresh.slot2, fresh.needs_work) == (1, None, True)
    second = item_view(row(2, double=True, slot1=("submitted", OTHER, NOW)), ME, NOW)
    assert (second.slot1, second.slot2, second.offer) == ("done", "open", 2)
    # Slot 2 never goes to whoever gave the first label, nor to anyone who labeled the completion.
    assert item_view(row(3, double=True, slot1=("submitted", ME, NOW), mine=True), ME, NOW).offer is None
    assert item_view(row(4, mine=True), ME, NOW).offer is None
    held = item_view(row(5, slot1=("claimed", OTHER, lease)), ME, NOW)
    assert held.offer is None and held.held_by_others
    # Slot 2 opens only once slot 1 is done.
    waiting = item_view(row(6, double=True, slot1=("claimed", OTHER, lease)), ME, NOW)
    assert waiting.offer is None and waiting.slot2 == "open"
    done = item_view(row(7, double=True, slot1=("submitted", OTHER, NOW), slot2=("submitted", 3, NOW)), ME, NOW)
    assert not done.needs_work and done.offer is None


def order(rows: list[QueueRow]) -> list[tuple[str, int]]:
    return [(view.row.completion_id, slot) for view, slot in routing_order([item_view(r, ME, NOW) for r in rows])]


def test_second_labels_go_first_then_every_stratum_once_then_in_proportion() -> None:
    big = [row(i, "big", position=10 - i) for i in range(1, 6)]  # queue positions 9..5
    small = [row(i, "small", position=i) for i in (6, 7)]
    second = row(8, "other", position=0, double=True, slot1=("submitted", OTHER, NOW))
    served = order([*big, *small, second])
    assert served[0] == ("c8", 2)
    assert all(slot == 1 for _, slot in served[1:])
    strata = ["big" if int(cid[1:]) <= 5 else "small" for cid, _ in served[1:]]
    # The larger stratum first, then the small one's first item before the big one's second
    # (every stratum once); then Sainte-Lague on (taken + 1/2) / items: big 0.3, 0.5, 0.7 before
    # small's 0.75, then big's 0.9.
    assert strata == ["big", "small", "big", "big", "big", "small", "big"]
    # Within a stratum, by queue position.
    assert [cid for cid, _ in served[1:] if int(cid[1:]) <= 5] == ["c5", "c4", "c3", "c2", "c1"]


def test_held_items_count_as_taken_for_their_stratum() -> None:
    lease = NOW + timedelta(minutes=30)
    a = [row(1, "a", 0, slot1=("claimed", OTHER, lease)), row(2, "a", 1), row(3, "a", 2)]
    b = [row(4, "b", 0), row(5, "b", 1)]
    # Stratum a is larger but already has a held item: b gets its first label first.
    assert order([*a, *b])[0] == ("c4", 1)


def test_a_stratum_labeled_at_all_waits_behind_every_empty_one() -> None:
    empty_small = stratum_priority("xm|tha", 0, 1)
    for taken, items in [(1, 1000), (1, 2), (5, 5)]:
        assert stratum_priority("mmmu|deu", taken, items) > empty_small


def test_routing_order_is_lazy_and_counts_what_it_hands_out() -> None:
    """A caller that loses a race moves on: the next offer already counts the lost one as taken."""
    rows = [row(1, "a", 0), row(2, "a", 1), row(3, "b", 0)]
    offers = routing_order([item_view(r, ME, NOW) for r in rows])
    first, second = next(offers), next(offers)
    assert {first[0].row.stratum, second[0].row.stratum} == {"a", "b"}
