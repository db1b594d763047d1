"""Evaluators: registered classes whose metrics carry their convention in their names."""

from unlearnbench.evaluators.base import EvalContext, Evaluator, Metric, Scored, build_evaluators

__all__ = ["EvalContext", "Evaluator", "Metric", "Scored", "build_evaluators"]
