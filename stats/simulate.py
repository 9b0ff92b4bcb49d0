"""A synthetic analysis frame with known truth, for tests, benchmarks and the worked example.

The generator mimics the study: completions of vision-language models on multilingual
benchmarks, each asked with and without an image; a gold language-fidelity label (and a gold
correctness label) that only a stratified, unequal-probability sample receives; and cheap
surrogates (fastText-like language ID, LLM judge) whose errors depend on the answer's length and
language. Because answers to image queries are shorter, the surrogate's error differs between
the with- and without-image arms, so a surrogate-only estimate of image-induced fidelity loss is
biased: exactly the situation DSL corrects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["DEFAULT_MODELS", "LANGUAGE_WEIGHTS", "simulate_study"]

#: Model name -> (llm, vision_encoder, train_language): LLaVA and one ablation per component.
DEFAULT_MODELS: Mapping[str, tuple[str | None, str | None, str | None]] = {
    "llava-1.5": ("vicuna", "clip", "en"),
    "llava-qwen2": ("qwen2", "clip", "en"),
    "llava-siglip": ("vicuna", "siglip", "en"),
    "llava-multi": ("vicuna", "clip", "multi"),
}
_BENCHMARKS = ("xgqa", "maxm", "mtvqa")
#: Sampling weight of a query language (the paper's Appendix B weights, for our languages).
LANGUAGE_WEIGHTS: Mapping[str, float] = {"deu": 4.0, "zho": 2.0, "hin": 2.0, "rus": 0.5}
_LANGUAGES = ("deu", "zho", "fra", "spa", "rus", "jpn", "ara", "hin")
# Text-only fidelity (logit scale) by language, and how hard each language is for the language ID.
_LANGUAGE_FIDELITY = dict(zip(_LANGUAGES, (2.6, 1.6, 2.5, 2.6, 2.0, 1.4, 1.5, 1.0), strict=True))
_LANGUAGE_LID_ERROR = dict(zip(_LANGUAGES, (-0.6, 0.3, -0.5, -0.6, 0.0, 0.4, 0.2, 0.8), strict=True))
# Image-induced change in fidelity (logit scale) by ablation component.
_IMAGE_EFFECT = -1.1
_ABLATION_IMAGE_EFFECT = {"llm": {"qwen2": 0.5}, "vision": {"siglip": -0.3}, "data": {"multi": 0.7}}


def simulate_study(
    n_rows: int = 730_000,
    n_labeled: int = 1_000,
    seed: int | np.random.Generator = 0,
    *,
    models: Mapping[str, tuple[str | None, str | None, str | None]] = DEFAULT_MODELS,
    benchmarks: Sequence[str] = _BENCHMARKS,
    languages: Sequence[str] = _LANGUAGES,
    completed: float = 1.0,
    include_truth: bool = False,
) -> pd.DataFrame:
    """Simulate an analysis frame (one row per completion) in the app's column contract.

    Design, as the app's (annotator.design.sampling): strata are ``benchmark|query_language``; each
    benchmark counts equally and languages are weighted (German 4, Chinese and Hindi 2, Russian
    0.5, others 1: ``LANGUAGE_WEIGHTS``); the label budget is allocated in proportion to those
    weights (at least one label per stratum, largest remainders) and a simple random sample of
    ``n_h`` is drawn in each stratum, so ``sample_prob = n_h / N_h`` is unequal. Strata cut across
    the model x benchmark cells and the image arms, as in the study.

    Parameters
    ----------
    n_rows : int
        Number of completions ``N``.
    n_labeled : int
        Label budget ``n``.
    seed : int or numpy.random.Generator
        Seeds everything; nothing global is touched.
    models : mapping
        Model name -> (llm, vision_encoder, train_language); ``None`` for non-ablation models.
    benchmarks, languages : sequence of str
        Benchmarks and query languages (ISO 639-3) to spread completions over.
    completed : float
        For interim analyses: each sampled item has its gold label already with this probability
        (``labeled = True``), independently of its labels.
    include_truth : bool
        Add ``fidelity_true`` and ``correct_true`` (gold values for every row) for checks.

    Returns
    -------
    DataFrame
        Columns ``completion_id, model, benchmark, query_language, image, llm, vision_encoder,
        train_language, stratum, sample_prob, sampled, labeled, fidelity, correct, pred_fidelity,
        pred_probability, pred_correct, completion_chars`` (+ truth columns on request).
    """
    rng = np.random.default_rng(seed)
    names = list(models)
    model_i = rng.integers(len(names), size=n_rows)
    bench_i = rng.integers(len(benchmarks), size=n_rows)
    lang_i = rng.integers(len(languages), size=n_rows)
    image = rng.integers(2, size=n_rows)
    attrs = np.array([models[m] for m in names], dtype=object)
    llm, vision, data = (attrs[model_i, j] for j in range(3))

    # Gold fidelity: a language baseline, model and benchmark shifts, and an image effect that
    # depends on the ablation components.
    base = np.array([_LANGUAGE_FIDELITY.get(lang, 2.0) for lang in languages])[lang_i]
    model_shift = rng.normal(0.0, 0.3, len(names))[model_i]
    bench_shift = np.linspace(-0.3, 0.3, len(benchmarks))[bench_i]
    image_effect = np.full(n_rows, _IMAGE_EFFECT)
    for column, values in (("llm", llm), ("vision", vision), ("data", data)):
        for level, shift in _ABLATION_IMAGE_EFFECT[column].items():
            image_effect += shift * (values == level)
    fidelity = rng.random(n_rows) < expit(base + model_shift + bench_shift + image * image_effect)

    # Answers to image queries are shorter; short answers fool the language ID more often.
    chars = np.round(np.exp(rng.normal(5.6 - 0.7 * image + 0.2 * bench_i, 0.8))).astype(np.int64) + 5
    lid_error = np.array([_LANGUAGE_LID_ERROR.get(lang, 0.0) for lang in languages])[lang_i]
    short = np.log(chars) - 5.0
    # A wrong-language answer is often mistaken for a faithful one when short (English loanwords
    # and code-mixing); a faithful answer is sometimes flagged when short.
    false_pos = expit(-1.2 + lid_error - 0.9 * short)
    false_neg = expit(-3.0 + lid_error - 0.9 * short)
    flip = rng.random(n_rows) < np.where(fidelity, false_neg, false_pos)
    pred_fidelity = np.where(flip, ~fidelity, fidelity)
    confidence = expit(2.5 + 0.8 * short - 2.0 * flip - lid_error + rng.normal(0.0, 0.7, n_rows))
    pred_probability = np.round(0.5 + 0.5 * confidence, 4)

    # Correctness and an LLM-judge surrogate (missing 3% of the time).
    correct = rng.random(n_rows) < expit(0.3 + 0.5 * model_shift - 0.4 * image + 0.6 * fidelity)
    judge_wrong = rng.random(n_rows) < np.where(correct, 0.08, 0.2)
    pred_correct = np.where(judge_wrong, ~correct, correct).astype(np.float64)
    pred_correct[rng.random(n_rows) < 0.03] = np.nan

    frame = pd.DataFrame(
        {
            "completion_id": [f"c{i:07d}" for i in range(n_rows)],
            "model": np.array(names, dtype=object)[model_i],
            "benchmark": np.array(benchmarks, dtype=object)[bench_i],
            "query_language": np.array(languages, dtype=object)[lang_i],
            "image": image.astype(np.int64),
            "llm": llm,
            "vision_encoder": vision,
            "train_language": data,
        }
    )
    frame["stratum"] = frame["benchmark"] + "|" + frame["query_language"]
    language_weight = np.array([LANGUAGE_WEIGHTS.get(lang, 1.0) for lang in languages])[lang_i]
    benchmark_share = np.bincount(bench_i, minlength=len(benchmarks))[bench_i] / n_rows
    sampled, sample_prob = _stratified_sample(
        frame["stratum"].to_numpy(), language_weight / benchmark_share, n_labeled, rng
    )
    labeled = sampled & (rng.random(n_rows) < completed)
    # Annotators answer "cannot tell" on correctness for 5% of the items they label.
    correct_gold = np.where(labeled & (rng.random(n_rows) >= 0.05), correct, np.nan)
    frame = frame.assign(
        sample_prob=sample_prob,
        sampled=sampled,
        labeled=labeled,
        fidelity=np.where(labeled, fidelity, np.nan),
        correct=correct_gold.astype(np.float64),
        pred_fidelity=pred_fidelity.astype(np.float64),
        pred_probability=pred_probability,
        pred_correct=pred_correct,
        completion_chars=chars,
    )
    if include_truth:
        frame["fidelity_true"] = fidelity.astype(np.float64)
        frame["correct_true"] = correct.astype(np.float64)
    return frame


def _stratified_sample(
    stratum: np.ndarray, weight: np.ndarray, n_labeled: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified simple random sample; returns (sampled mask, ``n_h / N_h`` per row).

    ``n_h`` is proportional to the stratum's total weight, at least 1 and at most ``N_h``, with the
    rounding remainder given to the largest fractional parts (exact for budgets below the
    population; a stratum capped at ``N_h`` keeps its excess unallocated, which does not arise at
    the study's sampling rates).
    """
    codes, _ = pd.factorize(stratum)
    sizes = np.bincount(codes)
    total = np.bincount(codes, weights=weight)
    target = n_labeled * total / total.sum()
    n_h = np.clip(np.floor(target).astype(np.int64), 1, sizes)
    short = n_labeled - n_h.sum()
    if short > 0:
        room = np.flatnonzero(n_h < sizes)
        n_h[room[np.argsort(-(target - np.floor(target))[room], kind="stable")[:short]]] += 1
    order = np.lexsort((rng.random(len(codes)), codes))  # random order within each stratum
    rank = np.empty(len(codes), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank[order] = np.arange(len(codes)) - starts[codes[order]]
    sampled = rank < n_h[codes]
    return sampled, (n_h / sizes)[codes]
