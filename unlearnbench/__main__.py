"""The ``unlearnbench`` command: a thin Hydra entry that calls ``pipeline.run``.

Heavy imports (torch, sklearn) happen inside the task, so ``--help`` stays fast. The task
returns the run's objective (``objective=``, a metric of the unlearned model), which is what
Hydra sweepers optimise.
"""

import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from unlearnbench.config import config_dir, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def task(cfg: DictConfig) -> Optional[float]:
    from unlearnbench.pipeline import run

    return run(cfg).objective


def main() -> None:
    """``+tuned=<file>`` becomes the file's overrides before Hydra composes the config."""
    from unlearnbench.errors import ConfigError
    from unlearnbench.tuning.tuned import expand_tuned

    try:
        sys.argv = sys.argv[:1] + expand_tuned(sys.argv[1:])
    except ConfigError as e:
        sys.exit(f"unlearnbench: {e}")
    task()


if __name__ == "__main__":
    main()
