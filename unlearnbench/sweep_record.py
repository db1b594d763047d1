"""Every sweep's ``multirun.yaml`` kept, in a folder of its own.

Hydra writes ``multirun.yaml`` into ``hydra.sweep.dir``, which is ``<output_root>/runs`` for
every sweep: run dirs must not depend on the sweep (a re-run finds and skips them), so the
sweep dir cannot be made per sweep without moving them. Each sweep's config is therefore
also written, at its start, to ``<output_root>/sweeps/<time>-<hash>/`` with the command line
that started it; ``runs/multirun.yaml`` remains the latest sweep's.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def sweep_folder(output_root: Path, overrides: list, now: float) -> Path:
    """A new ``<output_root>/sweeps/<YYYY-mm-dd_HH-MM-SS>-<6-hex hash of the overrides>``.

    The hash tells sweeps started in the same second apart; the same sweep started twice in
    one second gets ``-2``, ``-3``...
    """
    digest = hashlib.sha256(json.dumps(overrides).encode()).hexdigest()[:6]
    base = output_root / "sweeps" / f"{time.strftime('%Y-%m-%d_%H-%M-%S', time.localtime(now))}-{digest}"
    folder, n = base, 1
    while True:
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1
            folder = base.with_name(f"{base.name}-{n}")


class SweepRecordCallback(Callback):
    """Hydra callback: writes the sweep's ``multirun.yaml`` and ``command.txt`` to a new
    ``<output_root>/sweeps/<time>-<hash>/`` when a sweep (``-m``) starts."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        folder = sweep_folder(Path(str(config.output_root)), overrides, time.time())
        OmegaConf.save(config, folder / "multirun.yaml")  # what Hydra saves in runs/multirun.yaml
        (folder / "command.txt").write_text(shlex.join(["unlearnbench", *sys.argv[1:]]) + "\n")
