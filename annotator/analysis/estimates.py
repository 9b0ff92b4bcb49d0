"""The study's debiased estimates from the database: the analysis frame fed to ``stats``.

This is the one place where the stored study meets the estimators, so the dashboard, the CLI
(``ifl estimate``) and the ``estimates`` export report the same numbers. Estimation is by
:func:`stats.analyse_study`: DSL beside the surrogate-only and labeled-only estimators, with
each stratum's effective inclusion probability (labels so far / stratum size), so the figures
are valid at any point while annotation is under way. By default the intervals use the
design-based variance (finite-population correction, t intervals); a cell whose labels cannot
yet identify it has ``status == "not_estimable"``, NaN numbers and a ``needs`` sentence
instead (see docs/stats.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import pandas as pd
from sqlalchemy import Engine, func, select

from annotator.analysis.frame import (
    LabelCount,
    PopulationVersion,
    label_count,
    population_and_frame,
    population_disk_folder,
)
from annotator.analysis.population_store import derived_key, load_derived, population_key, save_derived
from db.models import Prediction, Sample
from stats import ABLATION_COLUMNS, INTERACTION_FORMULA, STATUS_NOT_ESTIMABLE, StudyAnalysis, analyse_study
from stats.crossfit import DistinctInputs

__all__ = [
    "NotEstimableError",
    "StudyEstimates",
    "StudyVersion",
    "ablation_models",
    "label_count",
    "study_estimates",
    "study_version",
]


class NotEstimableError(ValueError):
    """The study has no sample or no gold label yet, so there is nothing to estimate from."""


class StudyVersion(NamedTuple):
    """Changes whenever anything the estimates depend on changes: a cache key for them.

    Labels alone are not enough: a top-up changes inclusion probabilities and a new language
    ID run changes the surrogate, without a single new label.
    """

    labels: LabelCount
    samples: int
    sample_updated_at: datetime | None
    predictions: int
    predictions_updated_at: datetime | None


def study_version(engine: Engine) -> StudyVersion:
    """The current :class:`StudyVersion`, in two cheap queries."""
    statement = select(
        select(func.count()).select_from(Sample).scalar_subquery(),
        select(func.max(Sample.updated_at)).scalar_subquery(),
        select(func.count()).select_from(Prediction).scalar_subquery(),
        select(func.max(Prediction.created_at)).scalar_subquery(),
    )
    with engine.connect() as connection:
        row = connection.execute(statement).one()
    return StudyVersion(label_count(engine), *row)


@dataclass(frozen=True)
class StudyEstimates:
    """The estimate tables a researcher reads, split by estimand.

    Attributes
    ----------
    ifl : image effect on fidelity per model x benchmark (IFL; negative = fidelity lost); the
        ``ablation`` column marks the ablation variants (see :func:`ablation_models`)
    interaction : the interaction regression per target language (``language`` column)
    accuracy : image effect on correctness per model x benchmark, and its interaction regression
    strata : per stratum: size, sampled, labeled, effective probability; ``empty`` marks sampled
        strata with no labels yet (excluded from the estimates until they have some)
    power : precision of each DSL estimate now, with twice the labels, and labels needed
    all_estimates : every row of the above in one tidy table (the ``estimates`` export)

    Every estimates table has ``status`` (``ok`` / ``not_estimable``) and ``needs`` (for a
    cell that is not yet estimable: "not yet estimable: needs about k more labels in <strata>",
    its numbers NaN), ``df`` (of the t interval) and, for accuracy, ``bound_low``/``bound_high``
    (the estimate with every "cannot tell" read as wrong / as right).
    """

    ifl: pd.DataFrame
    interaction: pd.DataFrame
    accuracy: pd.DataFrame
    strata: pd.DataFrame
    power: pd.DataFrame
    all_estimates: pd.DataFrame
    labels: LabelCount
    notes: list[str] = field(default_factory=list)

    def not_estimable(self) -> pd.DataFrame:
        """One row per cell the labels cannot yet identify, with what it needs."""
        table = self.all_estimates
        keys = ["estimand", "outcome", "model", "benchmark", "language", "needs"]
        blocked = table.loc[table["status"] == STATUS_NOT_ESTIMABLE, keys]
        return blocked.drop_duplicates().reset_index(drop=True)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Name -> table, for printing and downloads."""
        return {
            "ifl": self.ifl,
            "interaction": self.interaction,
            "accuracy": self.accuracy,
            "strata": self.strata,
            "power": self.power,
        }


def ablation_models(frame: pd.DataFrame) -> set[str]:
    """Models whose every completion names its design (llm, vision encoder, training data).

    They are the ablation variants of the interaction regression; the dashboard shows the
    image effect of the other models first, as the paper's Figure 1 does.
    """
    designed = frame[list(ABLATION_COLUMNS.values())].notna().all(axis=1)
    return set(designed.groupby(frame["model"]).all().loc[lambda all_set: all_set].index)


def _strata_table(analysis: StudyAnalysis, frame: pd.DataFrame) -> pd.DataFrame:
    """The fidelity design's strata, each with the benchmark and query language of its rows.

    Taken from the frame, not parsed from the name: strata may split a benchmark x language by
    model x image arm (``MaXM|deu|3``), and a benchmark name may contain the separator.
    """
    design = analysis.designs["fidelity"]
    where = frame.drop_duplicates("stratum").set_index("stratum")[["benchmark", "query_language"]]
    strata = design.strata.join(where, on="stratum")
    strata["empty"] = strata["stratum"].isin(design.empty_strata)
    return strata


def study_estimates(
    engine: Engine,
    seed: int = 1234,
    *,
    sample_id: int | None = None,
    per_language: bool = False,
    interaction_formula: str = INTERACTION_FORMULA,
    cross_fit: int = 5,
    sample_split: int = 10,
    variance: str = "design",
    population_version: PopulationVersion | None = None,
) -> StudyEstimates:
    """Estimate every estimand of the study from what is stored now.

    ``per_language`` adds the image effect per model x benchmark x query language;
    ``interaction_formula`` replaces the paper's ``fidelity ~ image + image:llm + image:vision
    + image:data`` (variables ``llm``, ``vision``, ``data``; reference LLaVA); ``variance`` is
    ``design`` (honest small-sample intervals, the default) or ``sandwich`` (R ``dsl``'s).
    ``population_version``: the version the caller has just read, so that a kept population
    with it is used without reading the version again (see ``cached_population``).
    """
    labels = label_count(engine)
    population, frame = population_and_frame(engine, sample_id=sample_id, version=population_version)
    if not frame["sampled"].any():
        raise NotEstimableError("no sample has been drawn yet: draw one (ifl sample) and label some of it")
    if not frame["labeled"].any():
        raise NotEstimableError("no sampled item is labeled yet: the estimates need at least one gold label")
    # Where the population is kept on disk (ifl estimate, the app), the learner inputs derived
    # from it are kept beside it: a new process starts its estimation with them. A process that
    # holds them already (the app between recomputes) neither reads nor writes them again.
    folder = population_disk_folder(engine)
    first_here = folder is not None and not population.derived.population_items(DistinctInputs)
    derived = derived_key(population_key(population.version, sample_id, None))
    restored = load_derived(folder, derived, len(frame)) if folder is not None and first_here else []
    for key, inputs in restored:
        population.derived.put(key, inputs)
    analysis = analyse_study(
        frame,
        per_language=per_language,
        interaction_formula=interaction_formula,
        cross_fit=cross_fit,
        sample_split=sample_split,
        seed=seed,
        variance=variance,
        cache=population.derived,
    )
    if folder is not None and first_here and not restored:
        save_derived(folder, derived, population.derived.population_items(DistinctInputs))
    estimates = analysis.estimates
    estimates["ablation"] = estimates["model"].isin(ablation_models(frame))
    fidelity = estimates["outcome"] == "fidelity"
    image_effect = estimates["estimand"] == "image_effect"
    return StudyEstimates(
        ifl=estimates[fidelity & image_effect].reset_index(drop=True),
        interaction=estimates[fidelity & ~image_effect].reset_index(drop=True),
        accuracy=estimates[~fidelity].reset_index(drop=True),
        strata=_strata_table(analysis, frame),
        power=analysis.power,
        all_estimates=estimates,
        labels=labels,
        notes=analysis.notes,
    )
