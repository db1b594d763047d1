"""Datasets as resident tensors, and forget sets as index sets over their training split."""

from unlearnbench.data.bundle import DataBundle, Split, load_data

__all__ = ["DataBundle", "Split", "load_data"]
