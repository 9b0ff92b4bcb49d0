"""Statistics for ifl-studio: design-based supervised learning (DSL) and the study's estimands.

Pure: numpy, scipy, pandas, statsmodels/patsy and scikit-learn only.
"""

from stats.baselines import labeled_ols, surrogate_ols
from stats.crossfit import cross_fit_predictions, fold_assignments, learner_inputs
from stats.design import InterimDesign, interim_design, interim_sample_prob
from stats.dsl import DSLResults, dsl
from stats.estimands import (
    ABLATION_COLUMNS,
    ABLATION_REFERENCE,
    ESTIMATORS,
    INTERACTION_FORMULA,
    LEARNER_INPUTS,
    SURROGATE,
    TIDY_COLUMNS,
    EstimandFit,
    StudyAnalysis,
    ablation_frame,
    analyse_study,
    image_effect_fits,
    image_effect_table,
    interaction_fits,
    interaction_table,
    outcome_design,
    power_table,
    study_predictions,
    tidy_estimates,
)
from stats.learners import BinnedInteractionLearner, Learner, default_learner
from stats.power import labels_for_halfwidth, power_dsl, predicted_halfwidth
from stats.simulate import DEFAULT_MODELS, LANGUAGE_WEIGHTS, simulate_study

__all__ = [
    "ABLATION_COLUMNS",
    "ABLATION_REFERENCE",
    "DEFAULT_MODELS",
    "ESTIMATORS",
    "INTERACTION_FORMULA",
    "LANGUAGE_WEIGHTS",
    "LEARNER_INPUTS",
    "SURROGATE",
    "TIDY_COLUMNS",
    "BinnedInteractionLearner",
    "DSLResults",
    "EstimandFit",
    "InterimDesign",
    "Learner",
    "StudyAnalysis",
    "ablation_frame",
    "analyse_study",
    "cross_fit_predictions",
    "default_learner",
    "dsl",
    "fold_assignments",
    "image_effect_fits",
    "image_effect_table",
    "interaction_fits",
    "interaction_table",
    "interim_design",
    "interim_sample_prob",
    "labeled_ols",
    "labels_for_halfwidth",
    "learner_inputs",
    "outcome_design",
    "power_dsl",
    "power_table",
    "predicted_halfwidth",
    "simulate_study",
    "study_predictions",
    "surrogate_ols",
    "tidy_estimates",
]
