"""Reliability under concurrency: many worker processes on one database (20 on SQLite, 50 on
PostgreSQL), and a worker killed mid-claim.

Workers are separate processes with engines of their own, like separate annotator sessions
of the web app, so SQLite's file locking and PostgreSQL's row locks are what keeps them
apart. They start from a fork server that has imported the routing code once, so 50 of them
start in a second or two instead of each importing it anew.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from annotator.annotation.reporting import QueueState, progress
from annotator.annotation.routing import claim_next, submit
from annotator.storage import make_engine
from db.models import Annotation, Assignment, utcnow

WORKERS = {"sqlite": 20, "postgresql": 50}
SPAWN = multiprocessing.get_context("spawn")
FORKSERVER = multiprocessing.get_context("forkserver")
FORKSERVER.set_forkserver_preload(
    ["annotator.annotation.routing", "annotator.annotation.reporting", "annotator.storage"]
)


def _url(engine: Engine) -> str:
    """A URL a child process can open: for the PostgreSQL fixture, pinned to the test's schema."""
    url = engine.url
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.execute(text("SHOW search_path")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _label_until_done(url: str, annotator_id: int, double: frozenset[str], opening, start, results) -> None:
    """A worker: claim and label until nothing is left for this annotator (waiting while others hold work).

    An empty claim is checked with :func:`progress` at once. If that says work is available,
    it is a false "queue empty", unless a label that can open a second slot (of a
    double-annotated item) was being submitted at some moment between the start of the claim
    and the end of that check: ``opening`` counts such submits started and finished, and
    one overlapped the window exactly when more had started by its end than had finished
    by its beginning.
    """
    started, finished = opening
    try:
        engine = make_engine(url)
        start.wait()
        labeled, false_empty, opened_meanwhile = [], [], 0
        while True:
            finished_before = finished.value
            item = claim_next(engine, annotator_id)
            if item is None:
                state = progress(engine, annotator_id)
                if state.available_to_me:
                    if started.value > finished_before:
                        opened_meanwhile += 1
                    else:
                        false_empty.append(state.message)
                    continue
                if state.state is QueueState.HELD_BY_OTHERS:
                    time.sleep(0.05)
                    continue
                break
            may_open = item.completion_id in double
            if may_open:
                with started.get_lock():
                    started.value += 1
            try:
                submit(engine, annotator_id, item.completion_id, "german", True, None, seconds_spent=1.0)
            finally:
                if may_open:
                    with finished.get_lock():
                        finished.value += 1
            labeled.append(item.completion_id)
        results.put((annotator_id, labeled, false_empty, opened_meanwhile, None))
    except Exception:
        results.put((annotator_id, [], [], 0, traceback.format_exc()))


def _claim_and_hang(url: str, annotator_id: int, claimed) -> None:
    """A worker that claims one item and then hangs until it is killed."""
    item = claim_next(make_engine(url), annotator_id, lease=timedelta(minutes=5))
    claimed.put(item.completion_id)
    time.sleep(600)


def test_many_workers_never_share_an_item_lose_no_label_and_never_see_a_false_empty_queue(
    engine, make_study, add_account
):
    """Issue 11.8: 0 lost, 0 duplicate, 0 false "queue empty", 0 unhandled errors."""
    workers = WORKERS[engine.dialect.name]
    items = make_study(
        engine,
        {("mmmu", "deu"): 70, ("mmmu", "eng"): 60, ("xm", "tha"): 40, ("xm", "deu"): 30},
        double_share=0.2,
        seed=11,
    )
    languages = ["de", "en", "th"]
    annotators = [
        add_account(engine, f"worker-{k}", ",".join({languages[k % 3], languages[(k // 3) % 3]}))
        for k in range(workers)
    ]
    double = frozenset(items.loc[items["double_annotate"], "completion_id"])
    opening = (FORKSERVER.Value("i", 0), FORKSERVER.Value("i", 0))
    start, results = FORKSERVER.Barrier(workers), FORKSERVER.Queue()
    processes = [
        FORKSERVER.Process(target=_label_until_done, args=(_url(engine), annotator_id, double, opening, start, results))
        for annotator_id in annotators
    ]
    began = time.perf_counter()
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    elapsed = time.perf_counter() - began
    errors = [error for *_, error in reports if error]
    assert not errors, errors[0]
    false_empty = [message for _, _, messages, _, _ in reports for message in messages]
    assert not false_empty, f"{len(false_empty)} false 'queue empty', e.g. {false_empty[0]}"

    work = Counter(completion_id for _, labeled, *_ in reports for completion_id in labeled)
    planned = {row.completion_id: 1 + row.double_annotate for row in items.itertuples()}
    assert work == planned, "every planned label made exactly once: no item twice beyond the overlap, none left"
    with Session(engine) as session:
        stored = session.execute(select(Annotation.completion_id, Annotation.annotator_id)).all()
        statuses = Counter(session.scalars(select(Assignment.status)))
    assert len(stored) == sum(work.values()), "the final count equals the work done"
    assert {(annotator_id, completion_id) for annotator_id, labeled, *_ in reports for completion_id in labeled} == {
        (annotator_id, completion_id) for completion_id, annotator_id in stored
    }, "no submitted label lost, none invented"
    assert statuses == {"submitted": sum(work.values())}
    busy = sum(1 for _, labeled, *_ in reports if labeled)
    opened = sum(count for *_, count, _ in reports)
    print(
        f"{engine.dialect.name}: {len(stored)} labels by {busy} of {workers} workers in {elapsed:.1f} s; "
        f"{opened} empty claims explained by a second slot opening meanwhile"
    )
    assert busy > 1, "the work was actually shared, so the claims raced"


def test_a_killed_workers_item_returns_after_the_lease(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 1}, double_share=0)
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    claimed = SPAWN.Queue()
    worker = SPAWN.Process(target=_claim_and_hang, args=(_url(engine), ana, claimed))
    worker.start()
    try:
        completion_id = claimed.get(timeout=180)  # a spawned interpreter imports the app: slow on a loaded machine
    finally:
        worker.kill()
        worker.join(timeout=30)
    assert worker.exitcode is not None and worker.exitcode != 0
    assert completion_id == items.loc[0, "completion_id"]
    assert claim_next(engine, ben) is None, "still leased to the dead worker"
    taken = claim_next(engine, ben, now=utcnow() + timedelta(minutes=6))
    assert taken is not None and taken.completion_id == completion_id
    submit(engine, ben, completion_id, "german", True, None)
    with Session(engine) as session:
        assert session.execute(select(Annotation.annotator_id)).scalars().all() == [ben]
