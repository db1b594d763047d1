"""RunContext: what every stage may need besides the model and the data."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, Optional

import torch


@dataclass
class RunContext:
    """Device, seed, training recipe, progress bars, a timer and the model cache.

    Stages exchange their results as return values, never through the context.
    """

    device: torch.device
    seed: int
    recipe: Any  # engine.Recipe
    show_progress: bool = True
    cache: Any = None  # cache.ModelCache, or None (nothing cached)
    timings: Dict[str, float] = field(default_factory=dict)  # stage -> wall seconds (``timer``)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def generator(self, stream: str) -> torch.Generator:
        """A CPU generator for the named random ``stream`` of this run (see ``stream_seed``)."""
        return torch.Generator().manual_seed(stream_seed(self.seed, stream))

    @property
    def bf16(self) -> bool:
        """bf16 autocast: on CUDA by default (``train.amp=auto``), anywhere with ``train.amp=bf16``."""
        amp = getattr(self.recipe, "amp", "auto")
        return amp == "bf16" or (amp == "auto" and self.on_cuda)

    @property
    def channels_last(self) -> bool:
        """Image models and batches in channels_last: on CUDA unless ``train.channels_last`` says."""
        flag = getattr(self.recipe, "channels_last", None)
        return self.on_cuda if flag is None else bool(flag)

    def autocast(self) -> contextlib.AbstractContextManager:
        # bf16 needs no loss scaling; on CPU autocast would slow small models down, so it is
        # off there unless forced (train.amp=bf16 runs the CUDA path's dtypes on a CPU).
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def progress(self, iterable: Iterable, desc: str, total: Optional[int] = None, leave=False):
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, leave=leave, disable=not self.show_progress,
                    dynamic_ncols=True)

    def sync(self) -> None:
        if self.on_cuda:
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def timer(self, stage: str) -> Iterator[None]:
        """Wall seconds of ``stage`` (device work included) into ``timings[stage + '_s']``."""
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.timings[f"{stage}_s"] = self.timings.get(f"{stage}_s", 0.0) + time.perf_counter() - start


def stream_seed(seed: int, stream: str) -> int:
    """The seed of random stream ``stream`` in run ``seed``: a hash of both.

    Streams are named after what they draw (``"retain_batches"``, ``"localize_mask"``), so
    two draws are independent unless they share a name on purpose (``l1_sparse`` with
    alpha 0 is ``finetune`` because both draw ``"retain_batches"``); no numeric offsets
    that could collide.
    """
    if not isinstance(stream, str) or not stream:
        raise TypeError(f"random streams are named by a non-empty string, got {stream!r}")
    digest = hashlib.sha256(f"{int(seed)}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM or taskset limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def configure_threads(threads: Optional[int] = None) -> int:
    """Sets torch's intra-op threads; returns the count in use.

    ``threads`` wins; else ``OMP_NUM_THREADS`` if set (torch has applied it); else the
    cores this process may use. torch's own default counts the machine's cores, which
    oversubscribes a job pinned to fewer; parallel sweeps (several jobs per machine)
    should pass ``threads``.
    """
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    n = available_cores() if threads is None else int(threads)
    if n <= 0:
        from unlearnbench.errors import ConfigError

        raise ConfigError("threads", f"must be a positive count or null, got {threads}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
