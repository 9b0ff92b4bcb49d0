"""Coverage of the reported intervals, end to end through the ``ifl`` command on the small demo.

``python benchmarks/coverage_cli.py [--reps 40] [--shares 0.3,1.0] [--raw out.csv]``

What one replication does (issue 9's "Done means"): copy a demo database built once with
``ifl demo --size small --labeled-share 0``, draw a new sample with ``ifl sample --n 600
--seed S``, then for each labeled share (ascending) let ``ifl simulate-annotators --error-rate 0``
label up to that share of the sample and write ``ifl export estimates``. Each exported interval
is compared with the truth over the whole population, computed from ``demo_oracle``: the image
effect on fidelity (IFL) of every model x benchmark cell, and the interaction regression's
coefficients per target language.

Printed: per estimator and share, pooled coverage of the IFL intervals (main and ablation
cells), the lowest cell coverage, how many of the 12 main cells were reported, zero-width
intervals, and the mean width of the LLaVA-W cells. ``--code DIR`` runs another checkout of the
app (e.g. ``git archive HEAD``) for a side-by-side; ``--compare raw.csv`` prints the widths of
two runs' LLaVA-W cells side by side. Replications are slow (~15 s each, serial).

``--by-arm-labels`` measures what :data:`stats.MIN_LABELS` rests on: the same replications,
but estimated in this process with no minimum (``min_labels=1``), and coverage tabulated by
the number of labels in the smaller image arm of each IFL cell.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_SIZE = 600
MAIN_BENCHMARKS = ("LLaVA-W", "MaXM", "ViSIT")


def run_ifl(database: Path, code: Path, *args: str) -> None:
    """Run ``ifl --db <database> <args>`` with the app's code taken from ``code``."""
    env = dict(os.environ, PYTHONPATH=str(code))
    command = [sys.executable, "-m", "annotator.cli", "--db", f"sqlite:///{database}", *args]
    subprocess.run(command, check=True, env=env, cwd=code, stdout=subprocess.DEVNULL)


def population_truth(database: Path) -> pd.DataFrame:
    """True image effects per model x benchmark and interaction coefficients, from ``demo_oracle``."""
    import statsmodels.formula.api as smf
    from sqlalchemy import create_engine

    from annotator.analysis.frame import faithful_class
    from stats import ablation_frame

    engine = create_engine(f"sqlite:///{database}")
    frame = pd.read_sql(
        "select c.id, c.model, c.benchmark, c.query_language, c.image, c.llm, c.vision_encoder,"
        " c.train_language, o.answer_language from completions c join demo_oracle o on o.completion_id = c.id",
        engine,
    )
    frame["fidelity"] = (frame["answer_language"] == faithful_class(frame["query_language"])).astype(float)
    records = []
    for (model, benchmark), cell in frame.groupby(["model", "benchmark"]):
        effect = cell.loc[cell["image"] == 1, "fidelity"].mean() - cell.loc[cell["image"] == 0, "fidelity"].mean()
        records.append(
            {
                "estimand": "image_effect",
                "model": model,
                "benchmark": benchmark,
                "language": np.nan,
                "term": "image",
                "truth": effect,
            }
        )
    for language in ("zho", "deu"):
        rows = ablation_frame(frame.loc[frame["query_language"] == language])
        fit = smf.ols("fidelity ~ image + image:llm + image:vision + image:data", rows).fit()
        for term, value in fit.params.items():
            if term != "Intercept":
                records.append(
                    {
                        "estimand": "interaction",
                        "model": np.nan,
                        "benchmark": np.nan,
                        "language": language,
                        "term": term,
                        "truth": value,
                    }
                )
    return pd.DataFrame.from_records(records)


def sampled_copy(base: Path, code: Path, database: Path, seed: int) -> Path:
    """``database``: a copy of the demo ``base`` with a sample of :data:`SAMPLE_SIZE` drawn with ``seed``."""
    shutil.copy(base, database)
    run_ifl(database, code, "sample", "--n", str(SAMPLE_SIZE), "--seed", str(seed))
    return database


def label_up_to(database: Path, code: Path, seed: int, share: float, labeled: int) -> int:
    """Simulated annotators who never err label the sample until ``share`` of it has labels
    (``labeled`` items have them already); the labeled items now."""
    target = round(SAMPLE_SIZE * share)
    if target <= labeled:
        return labeled
    more = str(target - labeled)
    run_ifl(database, code, "simulate-annotators", "--error-rate", "0", "--n", more, "--seed", str(seed))
    return target


def replicate(base: Path, code: Path, workdir: Path, seed: int, shares: list[float]) -> pd.DataFrame:
    """One replication: a fresh sample, labeled up to each share in turn, exported each time.

    The exports stay in ``workdir`` (``rep<seed>_<share>.csv``); a replication found there
    complete is read back, not rerun, so an interrupted run resumes.
    """
    outputs = [workdir / f"rep{seed}_{share}.csv" for share in shares]
    if all(out.exists() for out in outputs):
        return pd.concat(
            [pd.read_csv(out).assign(rep=seed, share=share) for out, share in zip(outputs, shares, strict=True)],
            ignore_index=True,
        )
    database = sampled_copy(base, code, workdir / f"rep{seed}.sqlite", seed)
    tables, labeled = [], 0
    for share in shares:
        labeled = label_up_to(database, code, seed, share, labeled)
        out = workdir / f"rep{seed}_{share}.csv"
        run_ifl(database, code, "export", "estimates", "--out", str(out))
        tables.append(pd.read_csv(out).assign(rep=seed, share=share))
    database.unlink()
    return pd.concat(tables, ignore_index=True)


def arm_label_study(
    base: Path, code: Path, workdir: Path, seed: int, shares: list[float], truth: pd.DataFrame
) -> pd.DataFrame:
    """Coverage of every IFL cell with no label minimum, beside the labels in its smaller arm."""
    from sqlalchemy import create_engine

    from annotator.analysis.frame import analysis_frame
    from stats import analyse_study

    database = sampled_copy(base, code, workdir / f"arms{seed}.sqlite", seed)
    records, labeled = [], 0
    for share in shares:
        labeled = label_up_to(database, code, seed, share, labeled)
        frame = analysis_frame(create_engine(f"sqlite:///{database}"))
        arms = frame.groupby(["model", "benchmark", "image"])["fidelity"].count().unstack("image").min(axis=1)
        for variance in ("design", "sandwich"):
            table = analyse_study(
                frame,
                outcomes=("fidelity",),
                estimators=("dsl", "labeled"),
                seed=seed,
                min_labels=1,
                variance=variance,
                target_halfwidth=None,
            ).estimates
            table = table.loc[table["estimand"] == "image_effect"].merge(
                truth.loc[truth["estimand"] == "image_effect", ["model", "benchmark", "truth"]],
                on=["model", "benchmark"],
            )
            table["smaller_arm"] = arms.reindex(pd.MultiIndex.from_frame(table[["model", "benchmark"]])).to_numpy()
            table["covered"] = (table["ci_low"] <= table["truth"]) & (table["truth"] <= table["ci_high"])
            records.append(table.assign(rep=seed, share=share, variance=variance))
    database.unlink()
    return pd.concat(records, ignore_index=True)


def coverage_tables(raw: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per estimator x share, coverage per cell) of the fidelity IFL intervals."""
    fidelity = raw.loc[raw["outcome"] == "fidelity"].copy()
    fidelity["language"] = fidelity["language"].astype(object)
    keys = ["estimand", "model", "benchmark", "language", "term"]
    merged = fidelity.merge(truth.astype({"language": object}), on=keys, how="inner")
    merged["reported"] = merged["ci_low"].notna() & merged["ci_high"].notna()
    merged["covered"] = (
        merged["reported"] & (merged["ci_low"] <= merged["truth"]) & (merged["truth"] <= merged["ci_high"])
    )
    merged["width"] = merged["ci_high"] - merged["ci_low"]
    merged["main"] = merged["benchmark"].isin(MAIN_BENCHMARKS)
    ifl = merged.loc[merged["estimand"] == "image_effect"]
    reported = ifl.loc[ifl["reported"]]
    cells = (
        reported.groupby(["estimator", "share", "model", "benchmark"])
        .agg(reps=("covered", "size"), coverage=("covered", "mean"), width=("width", "mean"))
        .reset_index()
    )
    summary = []
    for (estimator, share), group in ifl.groupby(["estimator", "share"]):
        shown = group.loc[group["reported"]]
        cell = cells.loc[(cells["estimator"] == estimator) & (cells["share"] == share)]
        main = group.loc[group["main"]]
        interaction = merged.loc[
            (merged["estimand"] == "interaction")
            & (merged["estimator"] == estimator)
            & (merged["share"] == share)
            & merged["reported"]
        ]
        summary.append(
            {
                "estimator": estimator,
                "share": share,
                "pooled": shown["covered"].mean(),
                "main": shown.loc[shown["main"], "covered"].mean(),
                "ablation": shown.loc[~shown["main"], "covered"].mean(),
                "lowest_cell": cell["coverage"].min(),
                "main_reported": main["reported"].sum() / main["rep"].nunique(),
                "all_reported": group["reported"].mean(),
                "zero_width": int((shown["width"] <= 0).sum()),
                "llava_w_width": shown.loc[shown["benchmark"] == "LLaVA-W", "width"].mean(),
                "interaction": interaction["covered"].mean(),
            }
        )
    return pd.DataFrame(summary), cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--shares", default="0.3,1.0", help="labeled shares of the sample, comma-separated")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout of the app to run (default: this one)")
    parser.add_argument("--raw", type=Path, help="write every exported interval (with rep, share) here")
    parser.add_argument(
        "--workdir", type=Path, help="keep the demo database and each replication's exports here (resumes a run)"
    )
    parser.add_argument("--compare", type=Path, help="a --raw file of another run: LLaVA-W widths side by side")
    parser.add_argument(
        "--by-arm-labels",
        action="store_true",
        help="coverage by labels in the smaller image arm, no label minimum (in-process)",
    )
    args = parser.parse_args()
    shares = sorted(float(share) for share in args.shares.split(","))
    if args.by_arm_labels:
        by_arm_labels(args, shares)
        return

    with tempfile.TemporaryDirectory(prefix="ifl-coverage-") as directory:
        workdir = args.workdir or Path(directory)
        workdir.mkdir(parents=True, exist_ok=True)
        base = workdir / "base.sqlite"
        if not base.exists():
            run_ifl(base, args.code, "demo", "--size", "small", "--labeled-share", "0")
        truth = population_truth(base)
        tables = []
        for seed in range(args.first_seed, args.first_seed + args.reps):
            tables.append(replicate(base, args.code, workdir, seed, shares))
            print(f"replication {seed} done", file=sys.stderr, flush=True)
    raw = pd.concat(tables, ignore_index=True)
    if args.raw:
        raw.to_csv(args.raw, index=False)
    summary, cells = coverage_tables(raw, truth)
    pd.set_option("display.width", 200)
    print(f"{args.reps} replications, sample {SAMPLE_SIZE}, shares {shares}")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nlowest cells (DSL):")
    print(cells.loc[cells["estimator"] == "dsl"].sort_values("coverage").head(8).to_string(index=False))
    if args.compare:
        other, _ = coverage_tables(pd.read_csv(args.compare), truth)
        side = summary.merge(other, on=["estimator", "share"], suffixes=("", "_other"))
        print("\nside by side (this run vs --compare):")
        print(
            side[["estimator", "share", "pooled", "pooled_other", "llava_w_width", "llava_w_width_other"]].to_string(
                index=False, float_format=lambda v: f"{v:.3f}"
            )
        )


def by_arm_labels(args: argparse.Namespace, shares: list[float]) -> None:
    """Print coverage of the IFL intervals by labels in the smaller arm (behind MIN_LABELS)."""
    with tempfile.TemporaryDirectory(prefix="ifl-arms-") as directory:
        workdir = Path(directory)
        base = workdir / "base.sqlite"
        run_ifl(base, args.code, "demo", "--size", "small", "--labeled-share", "0")
        truth = population_truth(base)
        tables = []
        for seed in range(args.first_seed, args.first_seed + args.reps):
            tables.append(arm_label_study(base, args.code, workdir, seed, shares, truth))
            print(f"replication {seed} done", file=sys.stderr, flush=True)
    raw = pd.concat(tables, ignore_index=True)
    if args.raw:
        raw.to_csv(args.raw, index=False)
    raw = raw.loc[raw["ci_low"].notna()]
    raw["labels"] = pd.cut(
        raw["smaller_arm"], [0, 1, 2, 3, 4, 6, 9, 1000], right=False, labels=["0", "1", "2", "3", "4-5", "6-8", ">=9"]
    )
    table = raw.groupby(["variance", "estimator", "labels"], observed=True)["covered"].agg(["mean", "size"])
    print(f"{args.reps} replications, shares {shares}: coverage by labels in the smaller image arm")
    print(table.unstack(["variance", "estimator"]).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
