"""`ifl estimate` starts a fresh process each time: what `stats` imports counts (issue 10)."""

from __future__ import annotations

import subprocess
import sys


def test_stats_does_not_import_statsmodels() -> None:
    # statsmodels costs 0.7 s to import and analyse_study never uses it: only the formula-based
    # baselines (surrogate_ols, labeled_ols) import it, when called.
    code = "import sys, stats, stats.baselines; print('statsmodels' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_formula_baselines_still_fit() -> None:
    import numpy as np
    import pandas as pd

    from stats.baselines import labeled_ols, surrogate_ols

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"image": rng.integers(0, 2, 200), "pred": rng.random(200), "y": rng.random(200)})
    data.loc[::2, "y"] = np.nan
    assert surrogate_ols("y ~ image", data, "pred").nobs == 200
    assert labeled_ols("y ~ image", data, np.full(200, 0.5)).nobs == 100
