"""policy_selector package: candidates, labels by simulation, features, selectors, explanations."""

from policy_selector.candidates import DEFAULT_CANDIDATES, Candidate, CandidateSpace, Distribution
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff
from policy_selector.decision_eval import baseline_levels, baseline_rows, equal_service, replay, replay_table, summarise
from policy_selector.evaluation import best_single_candidate, confusion, evaluate_choices, gate, grouped_oof_predictions
from policy_selector.features import build_features
from policy_selector.labels import LabelSet, label_candidates, make_labels
from policy_selector.phased import phased_items, phased_plan
from policy_selector.recommend import EXTRA_COLUMNS, expected_outcomes, recommend_policies
from policy_selector.selector import FixedSelector, NotFittedError, PolicySelector, RuleSelector, Selection
from policy_selector.sizing import SizedCandidates, size_candidates
from policy_selector.workflow import StudyPlan, StudyResult, default_cutoffs, plan_study, run_study

__all__ = [
    "Candidate",
    "CandidateSpace",
    "Distribution",
    "DEFAULT_CANDIDATES",
    "SelectorConfig",
    "CutoffData",
    "prepare_cutoff",
    "SizedCandidates",
    "size_candidates",
    "LabelSet",
    "label_candidates",
    "make_labels",
    "build_features",
    "PolicySelector",
    "RuleSelector",
    "FixedSelector",
    "Selection",
    "NotFittedError",
    "evaluate_choices",
    "best_single_candidate",
    "grouped_oof_predictions",
    "confusion",
    "gate",
    "StudyResult",
    "StudyPlan",
    "plan_study",
    "run_study",
    "default_cutoffs",
    "recommend_policies",
    "expected_outcomes",
    "EXTRA_COLUMNS",
    "replay",
    "replay_table",
    "baseline_levels",
    "baseline_rows",
    "summarise",
    "equal_service",
    "phased_items",
    "phased_plan",
]
