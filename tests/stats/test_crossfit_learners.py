"""Cross-fitting never predicts a row from its own label; the default learner is sound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats import BinnedInteractionLearner, cross_fit_predictions, fold_assignments, learner_inputs


class _Memoriser:
    """Predicts the training label for a key it has seen, -1 otherwise (column 0 is the key)."""

    def get_params(self, deep: bool = True) -> dict:
        return {}

    def set_params(self, **params: object) -> _Memoriser:
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Memoriser:
        self.seen_ = dict(zip(X[:, 0].tolist(), y.tolist(), strict=True))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.seen_.get(key, -1.0) for key in X[:, 0].tolist()])


@pytest.fixture
def data(rng: np.random.Generator) -> pd.DataFrame:
    n = 600
    labeled = rng.random(n) < 0.4
    return pd.DataFrame(
        {
            "row": np.arange(n, dtype=float),
            "cluster": rng.integers(0, 40, size=n).astype(float),
            "y": np.where(labeled, rng.integers(0, 2, size=n).astype(float), np.nan),
        }
    )


def test_no_row_is_predicted_from_its_own_label(data: pd.DataFrame) -> None:
    g_hat = cross_fit_predictions(data, "y", "row", learner=_Memoriser(), sample_split=3, seed=1)
    assert g_hat.shape == (3, len(data))
    assert (g_hat == -1.0).all()


def test_clusters_stay_within_one_fold(data: pd.DataFrame) -> None:
    """Keyed by cluster, a memoriser must never have seen the held-out row's cluster."""
    g_hat = cross_fit_predictions(data, "y", "cluster", learner=_Memoriser(), cluster="cluster", seed=2)
    assert (g_hat == -1.0).all()
    # Without the cluster constraint, clusters straddle folds and the memoriser does recall them.
    straddling = cross_fit_predictions(data, "y", "cluster", learner=_Memoriser(), seed=2)
    assert (straddling != -1.0).mean() > 0.5


def test_folds_are_balanced_and_seeded() -> None:
    folds = fold_assignments(103, 5, np.random.default_rng(0))
    assert sorted(np.bincount(folds)) == [20, 20, 21, 21, 21]
    np.testing.assert_array_equal(folds, fold_assignments(103, 5, np.random.default_rng(0)))
    assert not np.array_equal(folds, fold_assignments(103, 5, np.random.default_rng(1)))
    with pytest.raises(ValueError):
        fold_assignments(10, 1, np.random.default_rng(0))


def test_several_targets_return_a_mapping(data: pd.DataFrame) -> None:
    both = data.assign(z=data["y"] * 2)
    g_hat = cross_fit_predictions(both, ["y", "z"], "row", learner=_Memoriser(), sample_split=2)
    assert set(g_hat) == {"y", "z"} and g_hat["z"].shape == (2, len(data))


def test_learner_inputs_one_hot_encodes_strings() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "lang": ["deu", "zho", "deu"], "flag": [True, False, True]})
    matrix = learner_inputs(frame, ["a", "lang", "flag"])
    np.testing.assert_array_equal(matrix, [[1, 1, 0, 1], [2, 0, 1, 0], [3, 1, 0, 1]])
    with pytest.raises(ValueError, match="missing"):
        learner_inputs(frame.assign(lang=["deu", None, "zho"]), ["lang"])


def test_default_learner_calibrates_a_biased_surrogate(rng: np.random.Generator) -> None:
    """Surrogate errs mostly when confidence is low: the learner must learn that shape."""
    n = 4000
    gold = rng.random(n) < 0.7
    confidence = rng.random(n)
    flip = rng.random(n) < 0.4 * (confidence < 0.3)
    surrogate = np.where(flip, ~gold, gold).astype(float)
    X = np.column_stack([surrogate, confidence, rng.integers(0, 2, size=n)])
    model = BinnedInteractionLearner().fit(X[:1000], gold[:1000].astype(float))
    p = model.predict(X[1000:])
    assert ((p >= 0) & (p <= 1)).all()
    truth = gold[1000:]
    brier_model = np.mean((p - truth) ** 2)
    brier_surrogate = np.mean((surrogate[1000:] - truth) ** 2)
    assert brier_model < 0.8 * brier_surrogate
    # Predict (blockwise) equals the fitted regression evaluated on the full design.
    np.testing.assert_allclose(p, model.model_.predict_proba(model._design(X[1000:]))[:, 1], atol=1e-12)


def test_default_learner_regresses_continuous_targets(rng: np.random.Generator) -> None:
    x = rng.normal(size=(500, 2))
    y = 2 * x[:, 0] + np.sin(3 * x[:, 1]) + rng.normal(0, 0.1, size=500)
    model = BinnedInteractionLearner().fit(x[:400], y[:400])
    assert not model.binary_
    residual = y[400:] - model.predict(x[400:])
    assert np.mean(residual**2) < 0.25 * np.var(y[400:])


def test_a_fold_without_training_labels_predicts_zero_not_an_error(data: pd.DataFrame) -> None:
    """The first label of a study: its own fold trains on nothing (0), the others on it alone."""
    one = data.assign(y=np.where(np.arange(len(data)) == 7, 1.0, np.nan))
    g_hat = cross_fit_predictions(one, "y", "row", learner=_Memoriser(), sample_split=3, seed=1)
    folds = np.vstack([fold_assignments(len(one), 5, rng) for rng in [np.random.default_rng(1)] for _ in range(3)])
    for split in range(3):
        own_fold = folds[split] == folds[split, 7]
        assert (g_hat[split, own_fold] == 0.0).all()  # the label's own fold never sees it
        assert (g_hat[split, ~own_fold] == 1.0).all()  # a single label value is predicted as it is
