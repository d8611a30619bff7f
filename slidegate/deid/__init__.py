"""De-identification: per-format policy and the pure plan built from slide facts."""

from slidegate.deid.plan import coarsen_year, plan_deid, summarize
from slidegate.deid.policy import DeidPolicy, FieldRule, ImagePolicy, load_deid_policy

__all__ = [
    "DeidPolicy",
    "FieldRule",
    "ImagePolicy",
    "coarsen_year",
    "load_deid_policy",
    "plan_deid",
    "summarize",
]
