"""Statistics for ifl-studio: design-based supervised learning (DSL) and the study's estimands.

Pure: numpy, scipy, pandas, statsmodels/patsy and scikit-learn only.
"""

from stats.baselines import SurveyResults, labeled_ols, labeled_survey, surrogate_ols
from stats.cells import ESTIMATORS, MIN_LABELS, EstimandFit, identification_shortfall
from stats.crossfit import cross_fit_predictions, fold_assignments, learner_inputs
from stats.design import (
    InterimDesign,
    StratifiedSample,
    SurveyFit,
    interim_design,
    interim_sample_prob,
    stratified_linearisation,
    survey_regression,
)
from stats.dsl import VARIANCES, dsl
from stats.dsl_results import DSLResults
from stats.estimands import (
    ABLATION_COLUMNS,
    ABLATION_REFERENCE,
    INTERACTION_FORMULA,
    SURROGATE,
    StudyAnalysis,
    ablation_frame,
    analyse_study,
    image_effect_fits,
    image_effect_table,
    interaction_fits,
    interaction_table,
    outcome_design,
)
from stats.ghat import LEARNER_INPUTS, study_predictions
from stats.learners import BinnedInteractionLearner, Learner, default_learner
from stats.power import labels_for_halfwidth, power_dsl, predicted_halfwidth
from stats.simulate import DEFAULT_MODELS, LANGUAGE_WEIGHTS, simulate_study
from stats.tables import STATUS_NOT_ESTIMABLE, STATUS_OK, TIDY_COLUMNS, power_table, tidy_estimates

__all__ = [
    "ABLATION_COLUMNS",
    "ABLATION_REFERENCE",
    "DEFAULT_MODELS",
    "ESTIMATORS",
    "INTERACTION_FORMULA",
    "LANGUAGE_WEIGHTS",
    "LEARNER_INPUTS",
    "MIN_LABELS",
    "STATUS_NOT_ESTIMABLE",
    "STATUS_OK",
    "SURROGATE",
    "TIDY_COLUMNS",
    "VARIANCES",
    "BinnedInteractionLearner",
    "DSLResults",
    "EstimandFit",
    "InterimDesign",
    "Learner",
    "StratifiedSample",
    "StudyAnalysis",
    "SurveyFit",
    "SurveyResults",
    "ablation_frame",
    "analyse_study",
    "cross_fit_predictions",
    "default_learner",
    "dsl",
    "fold_assignments",
    "identification_shortfall",
    "image_effect_fits",
    "image_effect_table",
    "interaction_fits",
    "interaction_table",
    "interim_design",
    "interim_sample_prob",
    "labeled_ols",
    "labeled_survey",
    "labels_for_halfwidth",
    "learner_inputs",
    "outcome_design",
    "power_dsl",
    "power_table",
    "predicted_halfwidth",
    "simulate_study",
    "stratified_linearisation",
    "study_predictions",
    "surrogate_ols",
    "survey_regression",
    "tidy_estimates",
]
