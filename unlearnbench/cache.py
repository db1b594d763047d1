"""Content-addressed model cache: originals and oracles are trained once per content key.

An entry is ``<root>/<stage>/<key>/{model.pt, meta.json}``. Writers hold a file lock on
``<key>.lock`` (a second process waits, then reuses), write into a temporary folder and
rename it into place, so a reader never sees a partial entry. ``meta.json`` stores the
checksum of ``model.pt``; a mismatch is reported and the entry rebuilt, never loaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch

log = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]


def content_key(material: Dict[str, Any]) -> str:
    """Stable hash of everything that determines an entry (JSON with sorted keys)."""
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ModelCache:
    """Stores state dicts under content keys; safe with several processes."""

    def __init__(self, root: os.PathLike):
        self.root = Path(root)

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    @contextmanager
    def _lock(self, stage: str, key: str) -> Iterator[None]:
        path = self.root / stage / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, stage: str, key: str, device: torch.device) -> Optional[Tuple[StateDict, Dict]]:
        """The entry if present and intact; a corrupt one is removed with a warning."""
        folder = self.entry(stage, key)
        meta_path, model_path = folder / "meta.json", folder / "model.pt"
        if not folder.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if file_sha256(model_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            state = torch.load(model_path, map_location=device, weights_only=True)
        except Exception as err:  # any damage means rebuild, never use
            log.warning("cache entry %s is corrupt (%s); rebuilding it", folder, err)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return state, meta

    def save(self, stage: str, key: str, state: StateDict, meta: Dict[str, Any]) -> Dict[str, Any]:
        folder = self.entry(stage, key)
        tmp = folder.parent / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cpu_state = {k: v.detach().cpu() for k, v in state.items()}
        torch.save(cpu_state, tmp / "model.pt")
        meta = {**meta, "sha256": file_sha256(tmp / "model.pt"), "created": time.time(),
                "stage": stage, "key": key}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        return meta

    def get_or_build(self, stage: str, material: Dict[str, Any], device: torch.device,
                     build: Callable[[], Tuple[StateDict, Dict[str, Any]]]
                     ) -> Tuple[StateDict, Dict[str, Any], bool]:
        """Returns (state, meta, hit). ``build`` runs at most once per key across processes."""
        key = content_key(material)
        found = self.load(stage, key, device)
        if found is not None:
            return (*found, True)
        with self._lock(stage, key):
            found = self.load(stage, key, device)  # another process may have built it meanwhile
            if found is not None:
                return (*found, True)
            state, meta = build()
            meta = self.save(stage, key, state, {**meta, "material": material})
            return state, meta, False

    def entries(self):
        """Yields (stage, key, meta, size_bytes) for every complete entry."""
        if not self.root.exists():
            return
        for meta_path in sorted(self.root.glob("*/*/meta.json")):
            folder = meta_path.parent
            if folder.name.startswith(".tmp"):
                continue
            size = sum(p.stat().st_size for p in folder.iterdir())
            yield folder.parent.name, folder.name, json.loads(meta_path.read_text()), size
