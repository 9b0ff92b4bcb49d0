"""Reliability under concurrency: 20 worker processes on one database, and a worker killed mid-claim.

Workers are spawned (not forked) processes with engines of their own, like separate
annotator sessions of the web app, so SQLite's file locking and PostgreSQL's row locks are
what keeps them apart.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections import Counter
from datetime import timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from annotator.routing import QueueState, claim_next, progress, submit
from annotator.storage import make_engine
from db.models import Annotation, Assignment, utcnow

WORKERS = 20
SPAWN = multiprocessing.get_context("spawn")


def _url(engine: Engine) -> str:
    """A URL a child process can open: for the PostgreSQL fixture, pinned to the test's schema."""
    url = engine.url
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.execute(text("SHOW search_path")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _label_until_done(url: str, annotator_id: int, start, results) -> None:
    """A worker: claim and label until nothing is left for this annotator (waiting while others hold work)."""
    try:
        engine = make_engine(url)
        start.wait()
        labeled = []
        while True:
            item = claim_next(engine, annotator_id)
            if item is None:
                if progress(engine, annotator_id).state is QueueState.HELD_BY_OTHERS:
                    time.sleep(0.05)
                    continue
                break
            submit(engine, annotator_id, item.completion_id, "german", True, None, seconds_spent=1.0)
            labeled.append(item.completion_id)
        results.put((annotator_id, labeled, None))
    except Exception:  # noqa: BLE001 - reported to the test, which fails with the traceback
        results.put((annotator_id, [], traceback.format_exc()))


def _claim_and_hang(url: str, annotator_id: int, claimed) -> None:
    """A worker that claims one item and then hangs until it is killed."""
    item = claim_next(make_engine(url), annotator_id, lease=timedelta(minutes=5))
    claimed.put(item.completion_id)
    time.sleep(600)


def test_twenty_workers_never_share_an_item_and_lose_no_label(engine, make_study, add_account):
    items = make_study(
        engine, {("mmmu", "deu"): 60, ("mmmu", "eng"): 50, ("xm", "tha"): 30, ("xm", "deu"): 20},
        double_share=0.2, seed=11,
    )
    languages = ["de", "en", "th"]
    annotators = [
        add_account(engine, f"worker-{k}", ",".join({languages[k % 3], languages[(k // 3) % 3]}))
        for k in range(WORKERS)
    ]
    start, results = SPAWN.Barrier(WORKERS), SPAWN.Queue()
    processes = [SPAWN.Process(target=_label_until_done, args=(_url(engine), annotator_id, start, results))
                 for annotator_id in annotators]
    began = time.perf_counter()
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    elapsed = time.perf_counter() - began
    errors = [error for _, _, error in reports if error]
    assert not errors, errors[0]

    work = Counter(completion_id for _, labeled, _ in reports for completion_id in labeled)
    planned = {row.completion_id: 1 + row.double_annotate for row in items.itertuples()}
    assert work == planned, "every planned label made exactly once: no item twice beyond the overlap, none left"
    with Session(engine) as session:
        stored = session.execute(select(Annotation.completion_id, Annotation.annotator_id)).all()
        statuses = Counter(session.scalars(select(Assignment.status)))
    assert len(stored) == sum(work.values()), "the final count equals the work done"
    assert {(annotator_id, completion_id) for annotator_id, labeled, _ in reports for completion_id in labeled} == {
        (annotator_id, completion_id) for completion_id, annotator_id in stored
    }, "no submitted label lost, none invented"
    assert statuses == {"submitted": sum(work.values())}
    busy = sum(1 for _, labeled, _ in reports if labeled)
    print(f"{engine.dialect.name}: {len(stored)} labels by {busy} of {WORKERS} workers in {elapsed:.1f} s")
    assert busy > 1, "the work was actually shared, so the claims raced"


def test_a_killed_workers_item_returns_after_the_lease(engine, make_study, add_account):
    items = make_study(engine, {("mmmu", "deu"): 1}, double_share=0)
    ana, ben = add_account(engine, "ana", "de"), add_account(engine, "ben", "de")
    claimed = SPAWN.Queue()
    worker = SPAWN.Process(target=_claim_and_hang, args=(_url(engine), ana, claimed))
    worker.start()
    try:
        completion_id = claimed.get(timeout=60)
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

