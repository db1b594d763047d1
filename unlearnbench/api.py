"""The Python API: ``unlearnbench.run([...overrides])`` from a notebook or a script.

It composes the same config the ``unlearnbench`` command would (same overrides, same
run dir, same skip-if-finished rule), writes ``.hydra/config.yaml`` and a log file like the
command does, and returns the ``RunResult`` with the models still in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf, open_dict

from unlearnbench.config import compose
from unlearnbench.errors import UnlearnbenchError
from unlearnbench.results import finished


def run(overrides: Sequence[str] = ()):
    """Runs one experiment in this process, as ``unlearnbench <overrides>`` would.

    Args:
        overrides: Hydra overrides, e.g. ``["method=finetune", "seed=0"]``. Sweeps (``-m``,
            comma lists) are the command's job; call ``run`` once per setting instead.

    Returns:
        ``RunResult`` with ``.metrics`` (the metrics.csv rows as a DataFrame), ``.models``
        (``original``, ``retrain``, ``unlearned``; empty when a finished run was skipped)
        and ``.run_dir``.
    """
    from unlearnbench.pipeline import run as run_pipeline

    if isinstance(overrides, str):
        raise TypeError("run() takes a list of overrides, e.g. run(['method=finetune'])")
    full = compose(list(overrides), return_hydra_config=True)
    run_dir = Path(full.run_dir if full.get("run_dir") else full.hydra.run.dir)
    cfg = compose(list(overrides))
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
    done = not cfg.overwrite and finished(run_dir)
    if not done:  # the config beside metrics.csv is what compare reads
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    with _log_to(run_dir / "unlearnbench.log", enabled=not done):
        return run_pipeline(cfg)


class _log_to:
    """Mirrors the ``unlearnbench`` logger into the run dir's log file for one run."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled, self.handler = path, enabled, None

    def __enter__(self):
        logger = logging.getLogger("unlearnbench")
        if self.enabled:
            self.handler = logging.FileHandler(self.path)
            self.handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
            logger.addHandler(self.handler)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, UnlearnbenchError):  # the reason a run stopped is in its log too
            logging.getLogger("unlearnbench").error("%s", exc)
        if self.handler is not None:
            logging.getLogger("unlearnbench").removeHandler(self.handler)
            self.handler.close()
        return False
