"""Forget specs: which training examples a run asks the model to forget."""

from unlearnbench.data.forget.base import ForgetSet, ForgetSpec, build_forget_spec

__all__ = ["ForgetSet", "ForgetSpec", "build_forget_spec"]
