"""SLURM sweeps through hydra-submitit-launcher: job states without accounting, whole-array waits.

submitit learns job states from ``sacct``. On clusters without accounting
(``AccountingStorageType=accounting_storage/none``, common on small and departmental
clusters) every poll fails: sacct prints "Slurm accounting storage is disabled", submitit
logs "Bypassing sacct error" twice, and a task that died without writing its result
(``scancel``, node failure, out of memory) stays "UNKNOWN" forever, so the sweep command
never returns. :class:`QueueWatcher` asks ``squeue`` instead when accounting is off (job
records stay there ``MinJobAge`` seconds after the end, 300 by default) and otherwise keeps
submitit's sacct polling. It also holds back a failed task's report until every task of the
sweep has ended, so the command returns after the whole array, with the other runs done.

:class:`SlurmWatcherCallback` installs it; ``conf/hydra/default.yaml`` lists the callback,
which does nothing unless the sweep's launcher is submitit's SLURM launcher.
"""

import logging
import os
import subprocess
from typing import Any, Dict, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

# A job whose record left squeue (MinJobAge after its end) before we saw its final state.
LEFT_QUEUE = "LEFT_QUEUE"
# States of an array task that is still queued or running (submitit's list, plus ours).
INCOMPLETE = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED",
              "CONFIGURING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING",
              "STAGE_OUT"}


def accounting_enabled() -> bool:
    """Whether ``sacct`` can answer on this cluster (``scontrol show config`` says so)."""
    try:
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                                timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return True  # cannot tell: keep submitit's own behaviour
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "AccountingStorageType":
            return value.strip() != "accounting_storage/none"
    return True


def read_squeue(text: str) -> Dict[str, Dict[str, str]]:
    """Parses ``squeue --array --noheader --format=%i|%T|%N`` into submitit's info dicts.

    Array tasks appear one per line as ``<job>_<task>``; a pending range such as
    ``12_[3-5%2]`` (older squeue versions) covers tasks 3, 4 and 5.
    """
    from submitit.slurm.slurm import read_job_id

    info: Dict[str, Dict[str, str]] = {}
    for line in text.splitlines():
        if line.count("|") != 2:
            continue
        job_id, state, nodes = (field.strip() for field in line.split("|"))
        stats = {"JobID": job_id, "State": state, "NodeList": nodes}
        for main, *tasks in read_job_id(job_id):
            if len(tasks) == 2:
                for task in range(int(tasks[0]), int(tasks[1]) + 1):
                    info[f"{main}_{task}"] = stats
            else:
                info["_".join([main, *tasks])] = stats
    return info


def _watcher_class():
    # submitit is the `slurm` extra: imported only when a SLURM sweep starts.
    from submitit.slurm.slurm import SlurmInfoWatcher

    class QueueWatcher(SlurmInfoWatcher):
        """submitit's job watcher, asking squeue when accounting is off (see module doc)."""

        def __init__(self, delay_s: int = 600) -> None:
            super().__init__(delay_s=delay_s)
            self._accounting: Optional[bool] = None

        def _make_command(self) -> Optional[List[str]]:
            if self._accounting is None:
                self._accounting = accounting_enabled()
                if not self._accounting:
                    log.info("SLURM accounting is off: following the jobs with squeue")
            if self._accounting:
                return super()._make_command()
            if not self._registered - self._finished:
                return None
            # All of this user's jobs: `squeue -j` fails outright once one id has left the queue.
            return ["squeue", f"--user={os.getuid()}", "--states=all", "--array", "--noheader",
                    "--format=%i|%T|%N"]

        def read_info(self, string: Any) -> Dict[str, Dict[str, str]]:
            if self._accounting:
                return super().read_info(string)
            text = string if isinstance(string, str) else string.decode()
            info = read_squeue(text)
            for job_id in self._registered - self._finished - info.keys():
                if not self._ended(job_id):  # keep a final state seen earlier (e.g. CANCELLED)
                    info[job_id] = {"JobID": job_id, "State": LEFT_QUEUE, "NodeList": ""}
            return info

        def _ended(self, job_id: str) -> bool:
            state = self.get_state(job_id, mode="cache").split(" ")[0]  # "CANCELLED by 0"
            return state.upper() not in INCOMPLETE

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            if not super().is_done(job_id, mode=mode):
                return False
            if self.get_state(job_id, mode="cache").upper() == "COMPLETED":
                return True
            # A failed task is reported (and the sweep stops) only once the others have ended.
            return all(self._ended(other) for other in self._registered)

    return QueueWatcher


def install_queue_watcher():
    """Makes every submitit SLURM job of this process report through a fresh QueueWatcher."""
    from submitit.slurm.slurm import SlurmJob

    SlurmJob.watcher = _watcher_class()(delay_s=600)
    return SlurmJob.watcher


class SlurmWatcherCallback(Callback):
    """Hydra callback: installs :class:`QueueWatcher` when a sweep uses submitit's SLURM launcher."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        target = str(config.hydra.launcher.get("_target_", ""))
        if target.endswith("hydra_submitit_launcher.submitit_launcher.SlurmLauncher"):
            install_queue_watcher()
