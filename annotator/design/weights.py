"""The weighting scheme of a sample: how much each completion counts when ``n`` is allocated
to the benchmark x query language strata (the paper's Appendix B, or a TOML file of one's own).

Only the weights: validation with errors that name the file and key, the paper's scheme, and
``W_h`` per stratum. :mod:`annotator.design.sampling` allocates and draws with them.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from annotator.languages import UnknownLanguageError, canonical_language

__all__ = ["PAPER_WEIGHTS", "SamplingWeights", "WeightsError", "as_weights", "load_weights"]


class WeightsError(ValueError):
    """A weighting scheme that is not valid; the message names the file (or source) and key."""


@dataclass(frozen=True)
class SamplingWeights:
    """How much each completion counts when the sample is allocated to strata.

    A completion's weight is ``(N / N_benchmark if balance_benchmarks else 1)
    * benchmarks.get(benchmark, 1) * languages.get(query_language, 1)``. Only ratios matter.

    The TOML form (:func:`load_weights`; :meth:`from_mapping` takes the same shape)::

        [benchmark]
        balance = true        # weight by 1 / the benchmark's share, so benchmarks count equally
        [benchmark.multipliers]
        MaXM = 1.5            # optional, per benchmark name
        [language]            # ISO 639-1/639-3 codes or English names
        German = 4.0
        zh = 2
        hin = 2
        ron = 0.5
    """

    balance_benchmarks: bool = True
    languages: Mapping[str, float] = field(default_factory=dict)
    benchmarks: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only copies, so that nobody changes PAPER_WEIGHTS (or a recorded scheme) in place.
        object.__setattr__(self, "languages", MappingProxyType(dict(self.languages)))
        object.__setattr__(self, "benchmarks", MappingProxyType(dict(self.benchmarks)))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], source: str = "<weights>") -> SamplingWeights:
        """Validate a TOML-shaped mapping; errors name ``source`` and the offending key."""

        def fail(key: str, problem: str) -> WeightsError:
            return WeightsError(f"{source}: {key}: {problem}")

        if not isinstance(mapping, Mapping):
            raise WeightsError(f"{source}: expected a table with [benchmark] and [language]")
        for key in mapping:
            if key not in ("benchmark", "language"):
                raise fail(str(key), "unknown section (use [benchmark] and [language])")
        benchmark = _table(mapping.get("benchmark", {}), "benchmark", fail)
        for key in benchmark:
            if key not in ("balance", "multipliers"):
                raise fail(f"benchmark.{key}", "unknown key (use balance and [benchmark.multipliers])")
        balance = benchmark.get("balance", True)
        if not isinstance(balance, bool):
            raise fail("benchmark.balance", f"{balance!r} is not true or false")
        multipliers = _table(benchmark.get("multipliers", {}), "benchmark.multipliers", fail)
        benchmarks = {
            str(name): _multiplier(value, f"benchmark.multipliers.{name}", fail) for name, value in multipliers.items()
        }
        languages: dict[str, float] = {}
        for name, value in _table(mapping.get("language", {}), "language", fail).items():
            key = f"language.{name}"
            try:
                code = canonical_language(str(name))
            except UnknownLanguageError as error:
                raise fail(key, str(error)) from None
            if code in languages:
                raise fail(key, f"names {code!r} a second time")
            languages[code] = _multiplier(value, key, fail)
        return cls(balance_benchmarks=balance, languages=languages, benchmarks=benchmarks)

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped form, as recorded in ``samples.weights``."""
        benchmark: dict[str, Any] = {"balance": self.balance_benchmarks}
        if self.benchmarks:
            benchmark["multipliers"] = dict(self.benchmarks)
        return {"benchmark": benchmark, "language": dict(self.languages)}

    def stratum_weights(self, strata: pd.DataFrame) -> NDArray[np.float64]:
        """``W_h`` for a frame with ``benchmark``, ``query_language`` and ``population`` per stratum."""
        population = strata["population"].to_numpy(dtype=np.float64)
        unit = np.ones(len(strata))
        if self.balance_benchmarks:
            per_benchmark = strata.groupby("benchmark")["population"].transform("sum").to_numpy(dtype=np.float64)
            unit *= population.sum() / per_benchmark
        unit *= strata["benchmark"].map(lambda name: self.benchmarks.get(name, 1.0)).to_numpy(dtype=np.float64)
        unit *= strata["query_language"].map(lambda code: self.languages.get(code, 1.0)).to_numpy(dtype=np.float64)
        return population * unit


def _table(value: Any, key: str, fail) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(key, "expected a table")
    return value


def _multiplier(value: Any, key: str, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(key, f"{value!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise fail(key, f"{value!r} must be a positive number")
    return float(value)


#: The paper's scheme (Appendix B): benchmarks balanced; German x4; Chinese, Hindi x2;
#: Romanian, Russian, Urdu x0.5.
PAPER_WEIGHTS = SamplingWeights(
    balance_benchmarks=True,
    languages={"deu": 4.0, "zho": 2.0, "hin": 2.0, "ron": 0.5, "rus": 0.5, "urd": 0.5},
)


def load_weights(path: str | Path) -> SamplingWeights:
    """Read a TOML weighting scheme (format: :class:`SamplingWeights`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise WeightsError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise WeightsError(f"{path}: not valid TOML ({error})") from None
    return SamplingWeights.from_mapping(data, source=str(path))


def as_weights(weights: SamplingWeights | Mapping[str, Any] | None) -> SamplingWeights:
    """A scheme from what callers pass: a :class:`SamplingWeights`, a TOML-shaped mapping, or
    None for :data:`PAPER_WEIGHTS`."""
    if weights is None:
        return PAPER_WEIGHTS
    if isinstance(weights, SamplingWeights):
        return weights
    return SamplingWeights.from_mapping(weights)
