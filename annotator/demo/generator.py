"""The embedded demo study: a synthetic study shaped like the paper's, with its true labels.

``ifl demo`` loads it so a researcher can try every feature (language ID, sampling,
annotation, estimation, the interaction regression) before importing real data, and so
estimates can be checked against a known truth (the ``demo_oracle`` table).

What is simulated, and why this way:

* **Design.** Four LLaVA-type models x three benchmarks (LLaVA-W, MaXM, ViSIT, in the
  paper's 600 : 2142 : 5740 task proportions) x 14 query languages (Table 2's task counts),
  each task answered by each model with and without the image, so the image effect is
  within task. The ``paper`` size repeats every task over 12 sampling *runs* (ids carry
  ``-r<run>``): 7,741 tasks x 12 runs x 4 models x 2 arms = 743,136 benchmark completions.
* **Answer language.** Per model x benchmark x language x arm the share of faithful answers
  is fixed so that the true image-induced fidelity loss (IFL), pooled over a model x
  benchmark's completions, equals :data:`TARGET_IFL` (the paper's Figure 1). Faithful counts
  are drawn as *quotas* (systematically rounded expected counts, then the tasks with the
  lowest latent "difficulty" score answer unfaithfully), not as independent coin flips: the
  demo's finite-population truth then equals the paper's numbers up to one completion per
  arm even in the small demo, so comparing an estimate with the oracle measures the
  estimator, not simulation noise. The shared task latent makes a task that fails without
  the image likelier to fail with it, as real paired data do.
* **Wrong languages** are mostly English (85 %), else a neighbouring study language, another
  Latin-script language, a non-study script or no language (digits, emoji). English queries
  are faithful 99 % of the time in both arms: a switch *to English* cannot show there.
* **Texts** come from :mod:`annotator.demo.phrases` (real phrases in every language), from a
  single word to five sentences, shorter with the image, so that the fastText surrogate
  makes its real errors.
* **Ablation** (Section 4.2, Table 4): 2x2x2 variants of LLM x vision encoder x training data
  for Chinese and German (benchmark :data:`ABLATION_BENCHMARK`). Without the image every
  variant has the same fidelity; with it, fidelity is additive in the three components with
  Table 4's coefficients. That makes :data:`ABLATION_EFFECTS` exactly the coefficients of
  ``fidelity ~ image + image:llm + image:vision + image:data`` *and* the components' effects
  on IFL in a saturated model (no component has a text-only main effect).
* **Correctness.** A true ``correct`` (oracle) and ``matches_gold`` (NA for open-ended
  tasks), and a simulated judge (``judge_correct``) that agrees about 87 % of the time with
  errors that depend on language, answer language and length (it misses right answers in
  low-resource languages and one-word answers; it accepts long wrong answers).

Everything is drawn from one ``numpy.random.default_rng(seed)``: the same size and seed give
the same study, and nothing seeds global state.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from annotator.demo.phrases import CONCEPT_QUESTION, CONCEPTS, QUESTION_TYPES, VARIETIES
from db.vocabulary import ANSWER_CLASSES, STUDY_LANGUAGES

__all__ = [
    "ABLATION_BENCHMARK",
    "ABLATION_COMPONENTS",
    "ABLATION_EFFECTS",
    "BENCHMARKS",
    "BENCHMARK_TASKS",
    "LANGUAGE_TASKS",
    "MODELS",
    "SIZES",
    "TARGET_IFL",
    "DemoSize",
    "DemoStudy",
    "build_demo",
]

#: The four models of the main study.
MODELS: tuple[str, ...] = ("llava-v1.5-7b", "llava-v1.5-13b", "bakllava", "llava-gemma-2b")

#: Benchmark -> number of tasks in the paper; only the proportions are used.
BENCHMARK_TASKS: Mapping[str, int] = {"LLaVA-W": 600, "MaXM": 2142, "ViSIT": 5740}
BENCHMARKS: tuple[str, ...] = tuple(BENCHMARK_TASKS)

#: Query language (ISO 639-3) -> tasks in the paper's Table 2, over all benchmarks (sum 7,740;
#: the benchmark sizes above sum to 8,482, so only their proportions are kept).
LANGUAGE_TASKS: Mapping[str, int] = {
    "zho": 862,
    "hin": 845,
    "eng": 842,
    "heb": 805,
    "tha": 793,
    "ara": 585,
    "ben": 585,
    "jpn": 585,
    "spa": 585,
    "deu": 525,
    "fra": 324,
    "ron": 284,
    "rus": 60,
    "urd": 60,
}
LANGUAGES: tuple[str, ...] = tuple(LANGUAGE_TASKS)

#: True IFL in percentage points (Figure 1): fidelity without image minus fidelity with image,
#: pooled over all completions (hence languages) of a model x benchmark. Endpoints are the
#: paper's; MaXM, which the figure places between the other two, and bakllava's LLaVA-W
#: value are our choices.
TARGET_IFL: Mapping[str, Mapping[str, float]] = {
    "llava-v1.5-7b": {"LLaVA-W": 13.7, "MaXM": 9.8, "ViSIT": 5.9},
    "llava-v1.5-13b": {"LLaVA-W": 19.2, "MaXM": 15.0, "ViSIT": 10.8},
    "bakllava": {"LLaVA-W": 3.5, "MaXM": 2.2, "ViSIT": 1.0},
    "llava-gemma-2b": {"LLaVA-W": 42.9, "MaXM": 47.9, "ViSIT": 52.9},
}

#: The benchmark column of the ablation completions: kept apart from the three benchmarks so
#: that the main study's benchmark x language strata hold the main study only.
ABLATION_BENCHMARK = "ablation"

#: Ablation language -> component -> (LLaVA reference level, alternative level).
ABLATION_COMPONENTS: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "zho": {"llm": ("vicuna", "yi"), "vision": ("clip", "dinov2"), "data": ("en", "zh")},
    "deu": {"llm": ("vicuna", "leo"), "vision": ("clip", "dinov2"), "data": ("en", "de")},
}

#: Table 4: coefficient of image:<component> (alternative level = 1) in the linear probability
#: model ``fidelity ~ image + image:llm + image:vision + image:data``; positive = less loss.
ABLATION_EFFECTS: Mapping[str, Mapping[str, float]] = {
    "zho": {"llm": 0.17, "vision": -0.20, "data": -0.16},
    "deu": {"llm": 0.07, "vision": -0.11, "data": -0.37},
}

# Ablation baselines: fidelity without the image (every variant), and with it for the LLaVA
# reference (vicuna, clip, en). Chosen so every variant stays within [0.24, 0.93].
_ABLATION_TEXT_FIDELITY = {"zho": 0.90, "deu": 0.93}
_ABLATION_REFERENCE_IMAGE_FIDELITY = {"zho": 0.62, "deu": 0.72}


@dataclass(frozen=True)
class DemoSize:
    """How big a demo is: a share of the paper's tasks, repeated over runs, plus the ablation."""

    task_fraction: float  #: share of Table 2's tasks in every benchmark x language stratum
    runs: int  #: sampling runs over the same tasks (each run answers every task again)
    ablation_tasks: int  #: tasks per ablation language (each answered by 8 variants x 2 arms)
    min_tasks: int = 2  #: floor per benchmark x language stratum, so every stratum exists


#: ``small`` builds and imports in seconds (18,672 rows, every benchmark x language stratum
#: present); ``paper`` has about the paper's ~730k benchmark completions (7,741 tasks x 12 runs
#: x 4 models x 2 arms = 743,136) plus 32,000 ablation rows (2 languages x 1,000 tasks x 16).
SIZES: Mapping[str, DemoSize] = {
    "small": DemoSize(task_fraction=0.25, runs=1, ablation_tasks=100),
    "paper": DemoSize(task_fraction=1.0, runs=12, ablation_tasks=1000),
}

# --- answer language -----------------------------------------------------------------------

# Fidelity without the image, by query language (lower for low-resource languages) and model.
_BASE_FIDELITY = {
    "eng": 0.99,
    "zho": 0.95,
    "spa": 0.96,
    "deu": 0.96,
    "fra": 0.96,
    "rus": 0.95,
    "jpn": 0.93,
    "ara": 0.91,
    "hin": 0.90,
    "heb": 0.90,
    "ron": 0.90,
    "tha": 0.89,
    "ben": 0.87,
    "urd": 0.85,
}
_MODEL_FIDELITY_OFFSET = {
    "llava-v1.5-7b": 0.0,
    "llava-v1.5-13b": 0.01,
    "bakllava": -0.02,
    "llava-gemma-2b": -0.04,
}
# How strongly the image hurts each language, relative to the model x benchmark's mean. English
# gets none: the loss shows as switching to English, which an English answer cannot.
_IFL_LANGUAGE_WEIGHT = {
    "eng": 0.0,
    "zho": 0.8,
    "spa": 0.8,
    "deu": 0.8,
    "fra": 0.85,
    "rus": 0.9,
    "jpn": 1.0,
    "ron": 1.0,
    "ara": 1.1,
    "hin": 1.1,
    "heb": 1.1,
    "tha": 1.15,
    "ben": 1.2,
    "urd": 1.25,
}
_MIN_FIDELITY = 0.02
# Correlation of the unfaithfulness scores of one task's completions (all models, both arms).
_TASK_CORRELATION = 0.5

# Unfaithful answers to a non-English query: mostly English, then the rest.
_WRONG_MIX = {"english": 0.85, "neighbour": 0.06, "other_latin": 0.04, "none": 0.04, "other": 0.01}
_NEIGHBOURS: Mapping[str, tuple[str, ...]] = {
    "zho": ("japanese",),
    "jpn": ("chinese",),
    "hin": ("urdu", "bengali"),
    "urd": ("hindi", "arabic"),
    "ara": ("urdu",),
    "heb": ("arabic",),
    "tha": ("chinese",),
    "ben": ("hindi",),
    "spa": ("french", "romanian"),
    "fra": ("spanish",),
    "ron": ("french", "spanish"),
    "deu": ("french",),
    "rus": ("german",),
}
# Unfaithful answers to an English query: bare numbers and emoji first.
_ENGLISH_WRONG_MIX = {"none": 0.5, "other_latin": 0.2, "spanish": 0.1, "german": 0.1, "other": 0.1}

# --- texts ---------------------------------------------------------------------------------

# Share of open-ended tasks (no single gold answer: matches_gold is NA), by benchmark.
_OPEN_SHARE = {"LLaVA-W": 1.0, "MaXM": 0.0, "ViSIT": 0.2, ABLATION_BENCHMARK: 0.2}
# Answer length (one word, one sentence, 2-5 sentences) of closed tasks, by benchmark and arm:
# answers to image queries are shorter, so the language ID errs more often in that arm.
# (LLaVA-W has no closed tasks; the ablation's are ViSIT-like.)
_VISIT_LENGTH = ((0.25, 0.40, 0.35), (0.35, 0.35, 0.30))
_LENGTH_MIX = {
    "MaXM": ((0.60, 0.30, 0.10), (0.70, 0.22, 0.08)),
    "ViSIT": _VISIT_LENGTH,
    "LLaVA-W": _VISIT_LENGTH,
    ABLATION_BENCHMARK: _VISIT_LENGTH,
}
_OPEN_LENGTH_MIX = (0.0, 0.30, 0.70)
_WORD, _SENTENCE, _LONG = 0, 1, 2

# --- correctness ---------------------------------------------------------------------------

_LOW_RESOURCE = frozenset({"urd", "ben", "tha", "heb", "hin"})
# Chance that a closed answer with the image matches the gold answer, by model.
_MODEL_QUALITY = {
    "llava-v1.5-7b": 0.52,
    "llava-v1.5-13b": 0.58,
    "bakllava": 0.54,
    "llava-gemma-2b": 0.42,
}
_ABLATION_QUALITY = 0.50
_CORRECT_IF_MATCH = 0.97  # a gold-matching answer can still be wrong (hedged, contradictory)
_CORRECT_IF_NO_MATCH = 0.15  # a synonym, or a gold answer that is itself wrong
_CORRECT_NA = 0.01  # unjudgeable (refusal, broken output)


def _judge_miss(low_resource: np.ndarray, unfaithful: np.ndarray, word: np.ndarray) -> np.ndarray:
    """P(judge says wrong | correct): misses right answers in rare languages and one-word ones."""
    return 0.04 + 0.10 * low_resource + 0.06 * unfaithful + 0.05 * word


def _judge_false_alarm(low_resource: np.ndarray, long: np.ndarray) -> np.ndarray:
    """P(judge says right | wrong): a verbosity bias, and laxness in rare languages."""
    return 0.10 + 0.15 * long + 0.05 * low_resource


# --- public types --------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoStudy:
    """A built demo: the completions to import and their true labels.

    ``completions`` follows the input schema of ``ifl import`` (plus covariates ``task``,
    the id shared by one task's completions, and ``run``). ``oracle`` has one row per
    completion: ``completion_id``, ``answer_language`` (an answer class), ``matches_gold`` and
    ``correct`` (pandas nullable booleans; ``<NA>`` = NA).
    """

    completions: pd.DataFrame
    oracle: pd.DataFrame
    size: str
    seed: int


# --- building ------------------------------------------------------------------------------


def _stratum_tasks(spec: DemoSize) -> np.ndarray:
    """Tasks per benchmark x language: Table 2's counts split in the benchmark proportions."""
    bench_share = np.array(list(BENCHMARK_TASKS.values()), float)
    bench_share /= bench_share.sum()
    lang_tasks = np.array(list(LANGUAGE_TASKS.values()), float)
    counts = np.rint(np.outer(bench_share, lang_tasks) * spec.task_fraction).astype(int)
    return np.maximum(counts, spec.min_tasks)


def _fidelity_table(counts: np.ndarray) -> np.ndarray:
    """Faithful share [model, benchmark, language, arm] whose pooled IFL hits TARGET_IFL.

    Within a model x benchmark the per-language loss is ``s * weight[language]``, capped so
    fidelity stays >= 2 %; ``s`` is found by bisection so that the loss averaged with the
    stratum's task counts equals the target.
    """
    weight = np.array([_IFL_LANGUAGE_WEIGHT[lang] for lang in LANGUAGES])
    table = np.empty((len(MODELS), len(BENCHMARKS), len(LANGUAGES), 2))
    for m, model in enumerate(MODELS):
        base = np.array([_BASE_FIDELITY[lang] for lang in LANGUAGES]) + _MODEL_FIDELITY_OFFSET[model]
        base = np.clip(base, _MIN_FIDELITY, 1 - _MIN_FIDELITY / 2)
        room = base - _MIN_FIDELITY
        for b, benchmark in enumerate(BENCHMARKS):
            target = TARGET_IFL[model][benchmark] / 100
            share = counts[b] / counts[b].sum()
            if share @ np.where(weight > 0, room, 0) < target:
                raise ValueError(f"IFL target {target:.3f} unreachable for {model} on {benchmark}")
            low, high = 0.0, 10.0
            for _ in range(60):
                mid = (low + high) / 2
                low, high = (mid, high) if share @ np.minimum(mid * weight, room) < target else (low, mid)
            loss = np.minimum(high * weight, room)
            table[m, b, :, 0] = base
            table[m, b, :, 1] = base - loss
    return table


def _quota_unfaithful(
    rng: np.random.Generator,
    p_faithful: np.ndarray,
    cell: np.ndarray,
    group: np.ndarray,
    score: np.ndarray,
) -> np.ndarray:
    """Unfaithful flags with exactly the expected count per cell, up to rounding.

    Expected unfaithful counts are rounded systematically (one uniform offset per group) over
    the cells of a group, so each cell's count is unbiased and a group's total is within one
    of its expectation. In each cell the rows with the lowest ``score`` are the unfaithful.
    Cells must be nested in groups.
    """
    n_cells = int(cell.max()) + 1
    expected = np.bincount(cell, weights=1 - p_faithful, minlength=n_cells)
    size = np.bincount(cell, minlength=n_cells)
    cell_group = np.zeros(n_cells, int)
    cell_group[cell] = group
    order = np.lexsort((np.arange(n_cells), cell_group))
    offset = rng.random(int(group.max()) + 1)
    sorted_group = cell_group[order]
    cumulative = np.cumsum(expected[order])
    group_start = np.r_[0.0, cumulative][np.searchsorted(sorted_group, sorted_group, side="left")]
    within = cumulative - group_start
    upper = np.floor(within + offset[sorted_group])
    lower = np.floor(within - expected[order] + offset[sorted_group])
    quota = np.empty(n_cells, int)
    quota[order] = np.minimum(upper - lower, size[order]).astype(int)

    row_order = np.lexsort((score, cell))
    first = np.r_[0, np.cumsum(size)[:-1]]
    rank = np.empty(len(cell), int)
    rank[row_order] = np.arange(len(cell)) - first[cell[row_order]]
    return rank < quota[cell]


def _pick(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row from a [rows, categories] probability matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(len(probabilities)) * cumulative[:, -1]
    return (u[:, None] >= cumulative).sum(axis=1)


def _wrong_class_matrix() -> np.ndarray:
    """[query language, answer class] probabilities of the class of an unfaithful answer."""
    index = {name: i for i, name in enumerate(ANSWER_CLASSES)}
    matrix = np.zeros((len(LANGUAGES), len(ANSWER_CLASSES)))
    for q, lang in enumerate(LANGUAGES):
        if lang == "eng":
            for name, p in _ENGLISH_WRONG_MIX.items():
                matrix[q, index[name]] += p
            continue
        for name, p in _WRONG_MIX.items():
            if name == "neighbour":
                for neighbour in _NEIGHBOURS[lang]:
                    matrix[q, index[neighbour]] += p / len(_NEIGHBOURS[lang])
            else:
                matrix[q, index[name]] += p
    return matrix


class _Bank:
    """The phrase bank as object arrays, indexed [variety, slot] for vectorised assembly."""

    def __init__(self) -> None:
        varieties = list(VARIETIES.values())
        self.codes = [variety.code for variety in varieties]
        self.words = np.array([variety.words for variety in varieties], dtype=object)
        self.sentences = np.array([variety.sentences for variety in varieties], dtype=object)
        splits = [[template.split("{}") for template in variety.templates] for variety in varieties]
        self.prefix = np.array([[split[0] for split in row] for row in splits], dtype=object)
        self.suffix = np.array([[split[1] for split in row] for row in splits], dtype=object)
        self.joiner = np.array([variety.joiner for variety in varieties], dtype=object)
        by_class: dict[str, list[int]] = {name: [] for name in ANSWER_CLASSES}
        for i, variety in enumerate(varieties):
            by_class[variety.answer_class].append(i)
        self.class_first = np.array([by_class[name][0] for name in ANSWER_CLASSES])
        self.class_count = np.array([len(by_class[name]) for name in ANSWER_CLASSES])
        self.questions = {code: VARIETIES[code].questions for code in LANGUAGES}


def _object_add(*parts: np.ndarray) -> np.ndarray:
    """Elementwise string concatenation of object arrays (numpy calls ``str.__add__``)."""
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result


# Row layout and names shared by the steps below (no draws).
_ALL_BENCHMARKS = (*BENCHMARKS, ABLATION_BENCHMARK)  #: benchmark index len(BENCHMARKS) is the ablation
_ABLATION_LANGUAGES: tuple[str, ...] = tuple(ABLATION_COMPONENTS)
_VARIANTS: tuple[tuple[int, ...], ...] = tuple(itertools.product((0, 1), repeat=3))  #: (llm, vision, data) levels


def _ablation_models() -> tuple[list[str], list[tuple[str, str, str]]]:
    """Name and (llm, vision, data) levels of each ablation model (language x variant): its model and design columns."""
    names: list[str] = []
    levels: list[tuple[str, str, str]] = []
    for ab_lang in _ABLATION_LANGUAGES:
        components = ABLATION_COMPONENTS[ab_lang]
        for llm, vision, data in _VARIANTS:
            chosen = (components["llm"][llm], components["vision"][vision], components["data"][data])
            levels.append(chosen)
            # Named by the target language's ISO 639-1 code, which is its training-data level.
            names.append(f"ablation-{components['data'][1]}-{'-'.join(chosen)}")
    return names, levels


def _question_of_concept() -> np.ndarray:
    """Question type (index into QUESTION_TYPES) of each concept, so a wrong answer stays on topic."""
    return np.array([QUESTION_TYPES.index(CONCEPT_QUESTION[c]) for c in CONCEPTS])


def _low_resource(lang: np.ndarray) -> np.ndarray:
    """1.0 where the query language is low-resource: models and the judge do worse there."""
    return np.isin(np.array(LANGUAGES), list(_LOW_RESOURCE))[lang].astype(float)


@dataclass(frozen=True, eq=False)
class _Tasks:
    """One entry per task: the main study's benchmark x language strata, then the ablation's."""

    bench: np.ndarray  #: benchmark index into _ALL_BENCHMARKS
    lang: np.ndarray  #: query language index into LANGUAGES
    number: np.ndarray  #: number within its benchmark x language stratum, for readable ids
    n_main: int  #: the first n_main tasks are the main study's, the rest the ablation's
    is_open: np.ndarray  #: open-ended: no single gold answer
    concept: np.ndarray  #: what a closed task asks about (index into CONCEPTS)
    question: np.ndarray  #: question type (index into QUESTION_TYPES)
    reference: np.ndarray  #: first phrase-bank sentence of an open task's reference answer
    latent: np.ndarray  #: unfaithfulness score shared by the task's completions


@dataclass(frozen=True, eq=False)
class _Rows:
    """One entry per completion: main tasks x runs x models x arms, then ablation tasks x variants x arms."""

    task: np.ndarray  #: index into the tasks
    run: np.ndarray  #: sampling run (0 for the ablation)
    image: np.ndarray  #: bool: the image arm
    model: np.ndarray  #: index into MODELS, then the ablation models of _ablation_models()
    bench: np.ndarray  #: the task's benchmark
    lang: np.ndarray  #: the task's query language
    is_open: np.ndarray  #: the task is open-ended
    n_main: int  #: the first n_main rows are the main study's
    ablation_slot: np.ndarray  #: ablation rows only: index into _ABLATION_LANGUAGES
    ablation_variant: np.ndarray  #: ablation rows only: index into _VARIANTS


@dataclass(frozen=True, eq=False)
class _Truth:
    """The true correctness of every completion (the oracle's ``matches_gold`` and ``correct``)."""

    matches: np.ndarray  #: the answer is the gold answer (NA for open tasks)
    correct: np.ndarray  #: the answer is right
    correct_na: np.ndarray  #: unjudgeable: ``correct`` is NA


@dataclass(frozen=True, eq=False)
class _Texts:
    """The completion texts and their length mode, which the language ID and the judge react to."""

    mode: np.ndarray  #: _WORD, _SENTENCE or _LONG
    text: np.ndarray  #: object array of str


def _draw_tasks(rng: np.random.Generator, spec: DemoSize, counts: np.ndarray, n_sentences: int) -> _Tasks:
    """The tasks and what each asks: drawn per task, so all its completions share them."""
    task_bench = np.repeat(np.repeat(np.arange(len(BENCHMARKS)), len(LANGUAGES)), counts.ravel())
    task_lang = np.repeat(np.tile(np.arange(len(LANGUAGES)), len(BENCHMARKS)), counts.ravel())
    n_ablation = spec.ablation_tasks * len(_ABLATION_LANGUAGES)
    task_bench = np.r_[task_bench, np.full(n_ablation, len(BENCHMARKS))]
    ablation_lang = [LANGUAGES.index(code) for code in _ABLATION_LANGUAGES]
    task_lang = np.r_[task_lang, np.repeat(ablation_lang, spec.ablation_tasks)]
    n_tasks = len(task_bench)
    # Number tasks within their stratum, for readable ids ("maxm-deu-00017").
    stratum = task_bench * len(LANGUAGES) + task_lang
    first_of_stratum = np.r_[0, np.cumsum(np.bincount(stratum, minlength=stratum.max() + 1))[:-1]]

    # The draws, in this order: open, concept, open question, reference, latent.
    open_share = np.array([_OPEN_SHARE[b] for b in _ALL_BENCHMARKS])
    is_open = rng.random(n_tasks) < open_share[task_bench]
    concept = rng.integers(len(CONCEPTS), size=n_tasks)
    open_question = QUESTION_TYPES.index("describe") + rng.integers(2, size=n_tasks)
    reference = rng.integers(n_sentences, size=n_tasks)
    latent = rng.standard_normal(n_tasks)
    return _Tasks(
        bench=task_bench,
        lang=task_lang,
        number=np.arange(n_tasks) - first_of_stratum[stratum],
        n_main=n_tasks - n_ablation,
        is_open=is_open,
        concept=concept,
        question=np.where(is_open, open_question, _question_of_concept()[concept]),
        reference=reference,
        latent=latent,
    )


def _completion_rows(spec: DemoSize, tasks: _Tasks) -> _Rows:
    """Every completion as indices (no draws): each task in both arms, so the image effect is within task."""
    n_models, n_variants = len(MODELS), len(_VARIANTS)
    n_main_tasks, n_tasks = tasks.n_main, len(tasks.bench)
    main_task = np.repeat(np.arange(n_main_tasks), spec.runs * n_models * 2)
    main_run = np.tile(np.repeat(np.arange(spec.runs), n_models * 2), n_main_tasks)
    main_model = np.tile(np.repeat(np.arange(n_models), 2), n_main_tasks * spec.runs)
    main_image = np.tile(np.array([0, 1]), n_main_tasks * spec.runs * n_models)

    n_ablation = n_tasks - n_main_tasks
    ab_task = np.repeat(np.arange(n_main_tasks, n_tasks), n_variants * 2)
    ab_variant = np.tile(np.repeat(np.arange(n_variants), 2), n_ablation)
    ab_image = np.tile(np.array([0, 1]), n_ablation * n_variants)
    ab_slot = np.array([_ABLATION_LANGUAGES.index(LANGUAGES[index]) for index in tasks.lang[ab_task]], int)

    task = np.r_[main_task, ab_task]
    return _Rows(
        task=task,
        run=np.r_[main_run, np.zeros(len(ab_task), int)],
        image=np.r_[main_image, ab_image].astype(bool),
        model=np.r_[main_model, n_models + ab_slot * n_variants + ab_variant],
        bench=tasks.bench[task],
        lang=tasks.lang[task],
        is_open=tasks.is_open[task],
        n_main=len(main_task),
        ablation_slot=ab_slot,
        ablation_variant=ab_variant,
    )


def _faithful_probability(rows: _Rows, counts: np.ndarray) -> np.ndarray:
    """P(faithful) per row: the table that hits TARGET_IFL, and Table 4's additive model for the ablation."""
    n_main = rows.n_main
    table = _fidelity_table(counts)
    p_faithful = np.empty(len(rows.task))
    main_arm = rows.image[:n_main].astype(int)
    p_faithful[:n_main] = table[rows.model[:n_main], rows.bench[:n_main], rows.lang[:n_main], main_arm]
    slot = rows.ablation_slot
    levels = np.array(_VARIANTS)[rows.ablation_variant]  # [rows, 3] indicators llm, vision, data
    text_fid = np.array([_ABLATION_TEXT_FIDELITY[code] for code in _ABLATION_LANGUAGES])[slot]
    image_fid = np.array([_ABLATION_REFERENCE_IMAGE_FIDELITY[code] for code in _ABLATION_LANGUAGES])[slot]
    effects = np.array([[ABLATION_EFFECTS[code][c] for c in ("llm", "vision", "data")] for code in _ABLATION_LANGUAGES])
    image_fid = image_fid + (levels * effects[slot]).sum(axis=1)
    p_faithful[n_main:] = np.where(rows.image[n_main:], image_fid, text_fid)
    if not ((p_faithful >= _MIN_FIDELITY) & (p_faithful <= 1)).all():
        raise RuntimeError("demo parameters give a faithfulness probability outside [0.02, 1]")
    return p_faithful


def _draw_unfaithful(rng: np.random.Generator, rows: _Rows, tasks: _Tasks, p_faithful: np.ndarray) -> np.ndarray:
    """Who answers in the wrong language: quotas per cell, so the truth hits the targets; lowest scores fail."""
    n_langs, n_bench_all = len(LANGUAGES), len(_ALL_BENCHMARKS)
    group = (rows.model * n_bench_all + rows.bench) * 2 + rows.image  # model x benchmark x arm
    cell = group * n_langs + rows.lang  # ... x language
    noise = rng.standard_normal(len(rows.task))
    score = np.sqrt(_TASK_CORRELATION) * tasks.latent[rows.task] + np.sqrt(1 - _TASK_CORRELATION) * noise
    _, cell = np.unique(cell, return_inverse=True)
    _, group = np.unique(group, return_inverse=True)
    return _quota_unfaithful(rng, p_faithful, cell, group, score)


def _draw_answer_class(rng: np.random.Generator, rows: _Rows, unfaithful: np.ndarray) -> np.ndarray:
    """The answer class (index into ANSWER_CLASSES): the query's, or a wrong one from the wrong-language mix."""
    class_index = {name: i for i, name in enumerate(ANSWER_CLASSES)}
    query_class = np.array([class_index[STUDY_LANGUAGES[code]] for code in LANGUAGES])[rows.lang]
    answer_class = query_class.copy()
    wrong = np.flatnonzero(unfaithful)
    answer_class[wrong] = _pick(rng, _wrong_class_matrix()[rows.lang[wrong]])
    return answer_class


def _draw_truth(rng: np.random.Generator, rows: _Rows, unfaithful: np.ndarray) -> _Truth:
    """Correctness truth: the chance of the gold answer (closed) or a right answer (open)."""
    n_rows = len(rows.task)
    n_ablation_models = len(_ABLATION_LANGUAGES) * len(_VARIANTS)
    quality = np.r_[np.array([_MODEL_QUALITY[m] for m in MODELS]), np.full(n_ablation_models, _ABLATION_QUALITY)]
    visit = rows.bench == BENCHMARKS.index("ViSIT")
    p_right = quality[rows.model] - 0.06 * visit - 0.08 * _low_resource(rows.lang) - 0.05 * unfaithful
    p_right = np.where(rows.image, p_right, 0.3 * p_right + 0.08)  # without the image: mostly guessing
    matches = rng.random(n_rows) < np.clip(p_right, 0.02, 0.98)
    p_correct = np.where(
        rows.is_open,
        np.clip(p_right + 0.10, 0.02, 0.98),
        np.where(matches, _CORRECT_IF_MATCH, _CORRECT_IF_NO_MATCH),
    )
    correct = rng.random(n_rows) < p_correct
    correct_na = rng.random(n_rows) < _CORRECT_NA
    return _Truth(matches=matches, correct=correct, correct_na=correct_na)


def _draw_answer_word(rng: np.random.Generator, concept: np.ndarray, matches: np.ndarray) -> np.ndarray:
    """The concept a closed answer names: the gold one if it matches, else another of the same question type."""
    question_of_concept = _question_of_concept()
    question_type = question_of_concept[concept]
    type_concepts = [np.flatnonzero(question_of_concept == q) for q in range(len(QUESTION_TYPES))]
    type_size = np.array([max(len(c), 1) for c in type_concepts])
    type_first = np.array([c[0] if len(c) else 0 for c in type_concepts])
    position = concept - type_first[question_type]
    step = (rng.random(len(concept)) * (type_size[question_type] - 1)).astype(int)
    other = (position + 1 + step) % type_size[question_type]
    return np.where(matches, concept, type_first[question_type] + other)


def _draw_texts(
    rng: np.random.Generator, bank: _Bank, rows: _Rows, tasks: _Tasks, answer_class: np.ndarray, matches: np.ndarray
) -> _Texts:
    """The completion texts, in the answer's language: a word, a framed word, or one to five sentences."""
    n_rows = len(rows.task)
    length_mix = np.array([_LENGTH_MIX[b][i] for b in _ALL_BENCHMARKS for i in (0, 1)])
    mix = np.where(rows.is_open[:, None], np.array(_OPEN_LENGTH_MIX)[None, :], length_mix[rows.bench * 2 + rows.image])
    # The draws, in this order: mode, variety, word, template, start, extra sentences.
    mode = _pick(rng, mix)
    variety = bank.class_first[answer_class] + (rng.random(n_rows) * bank.class_count[answer_class]).astype(int)
    word_index = _draw_answer_word(rng, tasks.concept[rows.task], matches)
    template = rng.integers(bank.prefix.shape[1], size=n_rows)
    n_sentences = bank.sentences.shape[1]
    start = rng.integers(n_sentences, size=n_rows)
    extra = np.where(mode == _LONG, rng.integers(1, 5, size=n_rows), 0)

    word = bank.words[variety, word_index]
    framed = _object_add(bank.prefix[variety, template], word, bank.suffix[variety, template])
    closed_head = np.where(mode == _WORD, word, framed)
    text = np.where(rows.is_open, bank.sentences[variety, start], closed_head)
    for i in range(1, 5):
        more = np.flatnonzero(extra >= i)
        text[more] = _object_add(
            text[more], bank.joiner[variety[more]], bank.sentences[variety[more], (start[more] + i) % n_sentences]
        )
    return _Texts(mode=mode, text=text)


def _draw_judge(
    rng: np.random.Generator, rows: _Rows, truth: _Truth, unfaithful: np.ndarray, mode: np.ndarray
) -> np.ndarray:
    """The simulated judge's verdict (surrogate for correctness), with errors by language and length."""
    low_resource = _low_resource(rows.lang)
    miss = _judge_miss(low_resource, unfaithful.astype(float), (mode == _WORD).astype(float))
    false_alarm = _judge_false_alarm(low_resource, (mode == _LONG).astype(float))
    p_judge_yes = np.where(truth.correct_na, 0.5, np.where(truth.correct, 1 - miss, false_alarm))
    return rng.random(len(rows.task)) < p_judge_yes


def _task_texts(bank: _Bank, tasks: _Tasks) -> tuple[np.ndarray, np.ndarray]:
    """Each task's prompt and gold answer in its query language (no draws)."""
    n_sentences = bank.sentences.shape[1]
    query_variety = np.array([bank.codes.index(code) for code in LANGUAGES])[tasks.lang]
    question_bank = np.array([bank.questions[code] for code in LANGUAGES], dtype=object)
    prompt = question_bank[tasks.lang, tasks.question]
    gold = np.where(
        tasks.is_open,
        _object_add(
            bank.sentences[query_variety, tasks.reference],
            bank.joiner[query_variety],
            bank.sentences[query_variety, (tasks.reference + 1) % n_sentences],
        ),
        bank.words[query_variety, tasks.concept],
    )
    return prompt, gold


def _task_ids(tasks: _Tasks) -> np.ndarray:
    """Readable task ids, benchmark-language-number ("maxm-deu-00017")."""
    bench_slug = np.array([b.lower().replace("-", "") for b in _ALL_BENCHMARKS], dtype=object)
    return _object_add(
        bench_slug[tasks.bench],
        np.full(len(tasks.bench), "-", dtype=object),
        np.array(LANGUAGES, dtype=object)[tasks.lang],
        np.array([f"-{k:05d}" for k in tasks.number], dtype=object),
    )


def _model_names() -> np.ndarray:
    """The model column's values by model index: MODELS, then the ablation models."""
    return np.array([*MODELS, *_ablation_models()[0]], dtype=object)


def _completion_ids(rows: _Rows, task_ids: np.ndarray, runs: int) -> np.ndarray:
    """Completion ids: task, run, model and arm ("maxm-deu-00017-r0-bakllava-img")."""
    run_tags = np.array([f"-r{r}-" for r in range(runs)], dtype=object)
    arm_tags = np.array(["-txt", "-img"], dtype=object)
    return _object_add(
        task_ids[rows.task], run_tags[rows.run], _model_names()[rows.model], arm_tags[rows.image.astype(int)]
    )


def _completions_frame(
    bank: _Bank,
    tasks: _Tasks,
    rows: _Rows,
    ids: np.ndarray,
    task_ids: np.ndarray,
    texts: _Texts,
    judge_correct: np.ndarray,
) -> pd.DataFrame:
    """The completions in the input schema of ``ifl import``, with the covariates ``task`` and ``run``."""
    n_models = len(MODELS)
    task_prompt, task_gold = _task_texts(bank, tasks)
    design = np.array([(None, None, None), *_ablation_models()[1]], dtype=object)
    is_ablation = np.arange(len(rows.task)) >= rows.n_main
    design_index = np.where(is_ablation, rows.model - n_models + 1, 0)
    return pd.DataFrame(
        {
            "id": ids,
            "model": _model_names()[rows.model],
            "benchmark": np.array(_ALL_BENCHMARKS, dtype=object)[rows.bench],
            "query_language": np.array(LANGUAGES, dtype=object)[rows.lang],
            "image": rows.image,
            "prompt": task_prompt[rows.task],
            "completion": texts.text,
            "gold_answer": task_gold[rows.task],
            "llm": design[design_index, 0],
            "vision_encoder": design[design_index, 1],
            "train_language": design[design_index, 2],
            "judge_correct": judge_correct,
            "task": task_ids[rows.task],
            "run": rows.run,
        }
    )


def _oracle_frame(ids: np.ndarray, rows: _Rows, answer_class: np.ndarray, truth: _Truth) -> pd.DataFrame:
    """The true labels for the ``demo_oracle`` table, NA as pandas' nullable booleans."""
    return pd.DataFrame(
        {
            "completion_id": ids,
            "answer_language": np.array(ANSWER_CLASSES, dtype=object)[answer_class],
            # np.array(None): numpy's stubs take no bare None; the object array is the same.
            "matches_gold": pd.array(np.where(rows.is_open, np.array(None), truth.matches), dtype="boolean"),
            "correct": pd.array(np.where(truth.correct_na, np.array(None), truth.correct), dtype="boolean"),
        }
    )


def build_demo(size: str = "small", seed: int = 0) -> DemoStudy:
    """Build the demo study (no database): completions in the import schema and their truth.

    ``size`` is a key of :data:`SIZES`. Pure and deterministic: the same arguments give equal
    frames; all randomness comes from ``numpy.random.default_rng(seed)``, drawn by the steps
    below in this order (reordering them changes every demo).
    """
    try:
        spec = SIZES[size]
    except KeyError:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}") from None
    rng = np.random.default_rng(seed)
    bank = _Bank()
    counts = _stratum_tasks(spec)

    tasks = _draw_tasks(rng, spec, counts, bank.sentences.shape[1])
    rows = _completion_rows(spec, tasks)
    unfaithful = _draw_unfaithful(rng, rows, tasks, _faithful_probability(rows, counts))
    answer_class = _draw_answer_class(rng, rows, unfaithful)
    truth = _draw_truth(rng, rows, unfaithful)
    texts = _draw_texts(rng, bank, rows, tasks, answer_class, truth.matches)
    judge_correct = _draw_judge(rng, rows, truth, unfaithful, texts.mode)

    task_ids = _task_ids(tasks)
    ids = _completion_ids(rows, task_ids, spec.runs)
    completions = _completions_frame(bank, tasks, rows, ids, task_ids, texts, judge_correct)
    oracle = _oracle_frame(ids, rows, answer_class, truth)
    return DemoStudy(completions=completions, oracle=oracle, size=size, seed=seed)
