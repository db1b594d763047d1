"""Unlearning methods: one class per module, registered with ``@METHODS.register``."""

from unlearnbench.methods.base import Method, UnlearnData, build_method

__all__ = ["Method", "UnlearnData", "build_method"]
