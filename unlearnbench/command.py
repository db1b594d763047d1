"""The ``unlearnbench`` command: a thin Hydra entry that calls ``pipeline.run``.

Heavy imports (torch, sklearn) happen inside the task, so ``--help`` stays fast. A run
stopped by an error the user can fix (``UnlearnbenchError``: bad config, bad data,
divergence) logs one line, with no traceback, to the console and the run's log; the other
jobs of a sweep go on, and the command exits with status 2. Other exceptions are bugs and
keep their traceback. (This lives in its own module, not ``__main__``, so that a worker
process's ``JobFailed`` is unpickled by reference into this module's ``FAILED``.)
"""

import logging
import sys
from typing import List, Optional

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from unlearnbench.config import config_dir, register_resolvers

register_resolvers()
EXIT_USER_ERROR = 2
FAILED: List[str] = []  # "<run dir>: <reason>" of every job of this process that stopped


class JobFailed(CompactHydraException):
    """Carries a job's one-line reason out of a launcher's worker process (joblib, submitit).

    Unpickling the job's result in the launching process runs ``__init__`` there, which
    records the failure in that process's ``FAILED``: every failed job is counted even
    though Hydra re-raises only the first.
    """

    def __init__(self, line: str):
        super().__init__(line)
        FAILED.append(line)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def task(cfg: DictConfig) -> Optional[float]:
    """One job; returns the run's objective (``objective=``), what Hydra sweepers optimise."""
    from hydra.core.hydra_config import HydraConfig

    from unlearnbench.errors import UnlearnbenchError
    from unlearnbench.pipeline import run
    from unlearnbench.registry import UnknownNameError

    try:
        return run(cfg).objective
    except (UnlearnbenchError, UnknownNameError) as err:
        logging.getLogger("unlearnbench").error("%s", err)  # console and <run dir>/unlearnbench.log
        hc = HydraConfig.get()
        line = f"{hc.runtime.output_dir}: {err}"
        if "BasicLauncher" in str(hc.launcher.get("_target_", "BasicLauncher")):
            FAILED.append(line)  # this process: the sweep goes on, main() reports at the end
        else:
            raise JobFailed(line) from None  # Hydra marks the job failed; the sweep goes on
    return None


def per_job_group_keys(args: List[str]) -> List[str]:
    """In a sweep over a config group (``-m method=topk,randomk``), a key of that group given
    once (``method.repair_epochs=0``) becomes a one-value sweep (``choice(0)``).

    Hydra composes a sweep once with every plain override and the group's *default* option,
    so a key that option lacks ("Key 'repair_epochs' is not in struct") would stop the sweep
    before its first job; a sweep parameter is applied per job instead, to each job's option.
    """
    if not {"-m", "--multirun"} & set(args):
        return args
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = {}
    for arg in args:
        if not arg.startswith("-") and "=" in arg:
            try:
                parsed[arg] = parser.parse_override(arg)
            except HydraException:
                pass  # Hydra reports it itself
    swept = {o.key_or_group for o in parsed.values() if o.is_sweep_override() and "." not in o.key_or_group}
    out = []
    for arg in args:
        o = parsed.get(arg)
        if (o is not None and o.type == OverrideType.CHANGE and not o.is_sweep_override()
                and "." in o.key_or_group and o.key_or_group.split(".")[0] in swept):
            arg = f"{o.key_or_group}=choice({arg.split('=', 1)[1]})"
        out.append(arg)
    return out


def main() -> None:
    """Runs the command; exit status 2 if any run of this process stopped on a user error.

    ``+tuned=<file>`` becomes the file's overrides before Hydra composes the config, and a
    swept group's keys become per-job (``per_job_group_keys``).
    """
    from unlearnbench.errors import ConfigError
    from unlearnbench.tuning.tuned import expand_tuned

    try:
        sys.argv = sys.argv[:1] + per_job_group_keys(expand_tuned(sys.argv[1:]))
    except ConfigError as err:
        print(f"unlearnbench: error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    try:
        task()
    except JobFailed:  # a worker's failure, re-raised as is under HYDRA_FULL_ERROR=1
        pass
    except SystemExit:  # Hydra's exit after printing a worker's failure
        if not FAILED:
            raise
    if FAILED:
        for line in FAILED:
            print(f"unlearnbench: error: {line}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)

