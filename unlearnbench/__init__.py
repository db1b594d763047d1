"""unlearnbench: train, unlearn, evaluate against a retrained oracle, tabulate."""

__version__ = "0.1.0"
