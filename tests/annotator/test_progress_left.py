"""``Progress.left_for_me``: what the Annotate page's "Left in my languages" shows.

It counts only what this annotator can still label (held or offered to them), never second
labels others must give, their own skips, or items others hold.
"""

from __future__ import annotations

from datetime import UTC, datetime

from annotator.annotation.reporting import progress
from annotator.annotation.routing import claim_next, skip, submit

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def test_left_for_me_counts_only_my_own_work(engine, make_study, add_account) -> None:
    items = make_study(engine, {("mmmu", "deu"): 6}, double_share=0.5, seed=3)
    n_double = int(items["double_annotate"].sum())
    assert 0 < n_double < 6
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    assert progress(engine, ana, now=T0).left_for_me == 6

    held = claim_next(engine, ana, now=T0)
    assert progress(engine, ana, now=T0).left_for_me == 6, "the held item counts once"
    taken = claim_next(engine, ben, now=T0)
    assert progress(engine, ana, now=T0).left_for_me == 5, "an item ben holds is not ana's to do"
    skip(engine, ana, held.completion_id)
    assert progress(engine, ana, now=T0).left_for_me == 4, "ana's skip is not ana's to do"
    submit(engine, ben, taken.completion_id, "german", True, True)

    while (item := claim_next(engine, ana, now=T0)) is not None:
        submit(engine, ana, item.completion_id, "german", True, None)
    mine = progress(engine, ana, now=T0)
    assert mine.left_for_me == 0
    assert mine.left_in_my_languages > 0, "second labels (and ana's skip) still need ben"
    assert progress(engine, ben, now=T0).left_for_me == mine.left_in_my_languages
