"""unlearnbench: train, unlearn, evaluate against a retrained oracle, tabulate.

``unlearnbench.run(["method=finetune", "seed=0"])`` runs one experiment from Python (see
docs/api.md); the ``unlearnbench`` command runs the same thing from a shell.
"""

__version__ = "0.1.0"


def run(overrides=()):
    """Runs one experiment; see :func:`unlearnbench.api.run`."""
    from unlearnbench.api import run as _run  # late: ``import unlearnbench`` stays light

    return _run(overrides)


__all__ = ["run", "__version__"]
