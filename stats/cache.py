"""The per-population cache of the estimands (issue 10): what :func:`stats.analyse_study`
derives from the population alone, kept between calls so a recompute after a new label fits
only what the labels change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["AnalysisCache", "cached"]


class AnalysisCache:
    """What :func:`analyse_study` derives from the population alone, kept between its calls.

    The learner inputs and their distinct rows, the cells of every estimand with their rows,
    design matrices and surrogate-only fits depend on the frame's population columns only, not
    on the gold labels (``labeled``, ``fidelity``, ``correct``, ``answer_language``). A caller
    that recomputes after every new label on an unchanged population (the dashboard) passes one
    cache to every call, and a recompute then fits only what the labels change (issue 10).

    The caller keeps one cache per population and drops it when any other column changes (an
    import, a language-ID run, a new sample): the cache cannot tell. It checks only the number
    of rows. Cell structures depend on which strata have labels: the ``keep`` most recently used
    values are kept, and apart from them the interim designs of the ``keep_labeled`` most recent
    label sets.
    """

    def __init__(self, keep: int = 32, keep_labeled: int = 4) -> None:
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._labeled: OrderedDict[Hashable, Any] = OrderedDict()
        self._keep = {False: keep, True: keep_labeled}
        self._rows: int | None = None
        self._lock = threading.Lock()

    def check(self, n_rows: int) -> None:
        """Refuse a frame of another size than the one the cache was filled from."""
        if self._rows is None:
            self._rows = n_rows
        elif self._rows != n_rows:
            raise ValueError(f"this AnalysisCache holds a population of {self._rows} rows, not {n_rows}")

    def get(self, key: Hashable, compute: Callable[[], Any], *, of_labels: bool = False) -> Any:
        """The value kept under ``key``, else ``compute()`` kept (the least recently used dropped).

        ``of_labels`` keeps it among the few values of particular labels (keyed by them), apart
        from the population's, so that a run of new labels never pushes those out."""
        items = self._labeled if of_labels else self._items
        with self._lock:  # the two outcomes' cross-fits ask from two threads
            if key in items:
                items.move_to_end(key)
                return items[key]
        value = compute()
        with self._lock:
            items[key] = value
            while len(items) > self._keep[of_labels]:
                items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def population_items(self, kind: type) -> list[tuple[Hashable, Any]]:
        """The kept values of the population (not of particular labels) that are ``kind``s, with
        their keys: what a caller may keep elsewhere (on disk) and :meth:`put` back."""
        with self._lock:
            return [(key, value) for key, value in self._items.items() if isinstance(value, kind)]

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` as if :meth:`get` had computed it."""
        self.get(key, lambda: value)


def cached(cache: AnalysisCache | None, key: Hashable, compute: Callable[[], Any], of_labels: bool = False) -> Any:
    """``compute()`` through ``cache`` (:meth:`AnalysisCache.get`), or directly without one."""
    return compute() if cache is None else cache.get(key, compute, of_labels=of_labels)
