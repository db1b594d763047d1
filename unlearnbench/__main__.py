"""The ``unlearnbench`` command: a thin Hydra entry that calls ``pipeline.run``.

Heavy imports (torch, sklearn) happen inside the task, so ``--help`` stays fast.
"""

import hydra
from omegaconf import DictConfig

from unlearnbench.config import config_dir, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> None:
    from unlearnbench.pipeline import run

    run(cfg)


if __name__ == "__main__":
    main()
