"""The SLURM job watcher without a cluster: squeue parsing, accounting detection, failure hold."""

import subprocess

import pytest
from omegaconf import OmegaConf

pytest.importorskip("submitit")
from submitit.slurm.slurm import SlurmJob  # noqa: E402

from unlearnbench import slurm  # noqa: E402


def watcher(accounting: bool, registered=("12_0", "12_1", "12_2")):
    w = slurm._watcher_class()()
    w._accounting = accounting
    for job_id in registered:
        w.register_job(job_id)
    return w


def test_squeue_lines_become_one_entry_per_array_task():
    info = slurm.read_squeue("12_0|COMPLETED|vm\n12_1|CANCELLED|vm\n12_[2-3%2]|PENDING|\nnoise\n")
    assert {k: v["State"] for k, v in info.items()} == {
        "12_0": "COMPLETED", "12_1": "CANCELLED", "12_2": "PENDING", "12_3": "PENDING"}


def test_without_accounting_the_watcher_asks_squeue_and_never_sacct():
    command = watcher(accounting=False)._make_command()
    assert command[0] == "squeue" and "--states=all" in command and "--array" in command
    assert watcher(accounting=True)._make_command()[0] == "sacct"


def test_a_task_missing_from_squeue_has_left_the_queue_unless_its_end_was_seen():
    w = watcher(accounting=False)
    w._info_dict.update(w.read_info("12_0|RUNNING|vm\n12_1|CANCELLED|vm\n12_2|RUNNING|vm\n"))
    info = w.read_info(b"12_0|RUNNING|vm\n")  # 12_1 and 12_2 purged after MinJobAge
    assert info["12_2"]["State"] == slurm.LEFT_QUEUE
    assert "12_1" not in info  # its CANCELLED state is kept, not overwritten


def test_a_failed_task_is_reported_only_after_the_other_tasks_ended():
    w = watcher(accounting=False)
    w._info_dict.update(w.read_info("12_0|RUNNING|vm\n12_1|CANCELLED|vm\n12_2|PENDING|\n"))
    assert not w.is_done("12_1", mode="cache")
    w._info_dict.update(w.read_info("12_0|COMPLETED|vm\n12_1|CANCELLED|vm\n12_2|RUNNING|vm\n"))
    assert w.is_done("12_0", mode="cache") and not w.is_done("12_1", mode="cache")
    w._info_dict.update(w.read_info("12_0|COMPLETED|vm\n12_1|CANCELLED|vm\n12_2|OUT_OF_MEMORY|vm\n"))
    assert w.is_done("12_1", mode="cache") and w.is_done("12_2", mode="cache")


@pytest.mark.parametrize("value, enabled", [("accounting_storage/none", False),
                                            ("accounting_storage/slurmdbd", True)])
def test_accounting_is_read_from_scontrol(monkeypatch, value, enabled):
    text = f"AccountingStorageHost   = (null)\nAccountingStorageType   = {value}\nKillWait = 5 sec\n"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, text, ""))
    assert slurm.accounting_enabled() is enabled


def test_the_callback_installs_the_watcher_only_for_the_slurm_launcher(monkeypatch):
    original = SlurmJob.watcher
    monkeypatch.setattr(SlurmJob, "watcher", original)
    local = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    slurm.SlurmWatcherCallback().on_multirun_start(OmegaConf.create({"hydra": {"launcher": {"_target_": local}}}))
    assert SlurmJob.watcher is original
    target = local.replace("LocalLauncher", "SlurmLauncher")
    slurm.SlurmWatcherCallback().on_multirun_start(OmegaConf.create({"hydra": {"launcher": {"_target_": target}}}))
    assert type(SlurmJob.watcher).__name__ == "QueueWatcher"


def test_every_sweep_lists_the_callback():
    from hydra.utils import instantiate

    from unlearnbench.config import compose

    cfg = compose(["hydra/launcher=slurm"], return_hydra_config=True)
    assert isinstance(instantiate(cfg.hydra.callbacks.slurm_watcher), slurm.SlurmWatcherCallback)
