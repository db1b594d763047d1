"""``python -m unlearnbench.reports`` is ``unlearnbench-compare``."""

from unlearnbench.reports.cli import main

main()
