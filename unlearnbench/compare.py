"""Moved to :mod:`unlearnbench.reports`; kept so ``python -m unlearnbench.compare`` still works."""

from unlearnbench.reports import *  # noqa: F401,F403
from unlearnbench.reports import main

if __name__ == "__main__":
    main()
