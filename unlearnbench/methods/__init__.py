"""Unlearning methods: one class per module, registered with ``@METHODS.register``."""

from unlearnbench.methods.base import Method, UnlearnData, Unlearned, as_unlearned, build_method

__all__ = ["Method", "UnlearnData", "Unlearned", "as_unlearned", "build_method"]
