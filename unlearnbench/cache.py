"""Content-addressed model cache: originals and oracles are trained once per content key.

An entry is ``<root>/<stage>/<key>/{model.pt, meta.json}``. Writers hold a file lock on
``<stage>/<key>.lock`` (a second process waits, then reuses), write into a temporary folder
``<stage>/.tmp-<key>-<host>-<pid>-<rand>`` and rename it into place, so a reader never sees a
partial entry. ``meta.json`` stores the checksum of ``model.pt``; a mismatch is reported and
the entry rebuilt, never loaded.

Why the lock-free read never deletes: a reader that races a writer replacing a damaged entry
can see a half-removed folder; only a process holding the key's lock may judge an entry
damaged and remove it. Leftover temporary folders (their writer was killed) are removed by
the next writer of the same key and by ``unlearnbench-cache clear``.

Forget indices are NOT cached: every forget spec selects them in milliseconds from the
data and the seed, each run stores its own ``forget_indices.npy``, and the oracle's key
hashes them, so a cache entry would add I/O and a corruption surface for no saving.

torch is imported lazily so ``unlearnbench-cache list`` starts instantly.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

StateDict = Dict[str, "torch.Tensor"]
TMP_PREFIX = ".tmp-"
# The Cache Directory Tagging standard (https://bford.info/cachedir/): backup tools skip the
# folder, and `unlearnbench-cache clear` deletes nothing in a folder without it.
MARKER = "CACHEDIR.TAG"
MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
               "# This file is a cache directory tag created by unlearnbench (model cache).\n")
KEY_CHARS = frozenset("0123456789abcdef")


class CorruptEntry(Exception):
    """An entry whose files are missing, unreadable or fail their checksum."""


class Entry(NamedTuple):
    stage: str
    key: str
    meta: Dict[str, Any]
    size_bytes: int
    path: Path


def content_key(material: Dict[str, Any]) -> str:
    """Stable hash of everything that determines an entry (JSON with sorted keys)."""
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


# Bump when training an original/oracle changes results, so stale cache entries are not reused.
TRAIN_STAGE_VERSION = "3"  # 2: one-shot epoch shuffles, threads setting; 3: named random streams


def training_material(dataset: Dict[str, Any], fingerprint: str, model: Dict[str, Any],
                      recipe: Dict[str, Any], seed: int,
                      forget: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Everything that determines a model trained from scratch: its cache key's material.

    Args:
        dataset: the dataset config minus keys that only locate files.
        fingerprint: ``DataBundle.fingerprint()`` of the data it trains on.
        model: the model config.
        recipe: ``Recipe.cache_material()``.
        seed: the run seed (initialisation and batch order).
        forget: ``{"spec", "indices_sha"}`` when the training set depends on the forget set
            (always for the oracle; for the original only if the spec rewrites the data).
    """
    m = {"stage_version": TRAIN_STAGE_VERSION, "dataset": dataset, "fingerprint": fingerprint,
         "model": model, "recipe": recipe, "seed": seed}
    if forget is not None:
        m["forget"] = forget
    return m


def array_sha(data: bytes) -> str:
    """Short content hash of raw bytes (index sets, rewritten rows)."""
    return hashlib.sha256(data).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    # fsync before the rename: after a machine crash the entry is whole or absent.
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def is_cache_root(root: Path) -> bool:
    """True if ``root`` carries unlearnbench's CACHEDIR.TAG (made by the first write)."""
    try:
        return (root / MARKER).read_text().startswith(MARKER_TEXT)
    except (OSError, UnicodeDecodeError):
        return False


def entry_layout_ok(folder: Path, meta: Dict[str, Any]) -> bool:
    """True if ``folder`` is laid out as an entry: ``<stage>/<24-hex key>/`` holding exactly
    model.pt and meta.json, whose meta names that stage and key."""
    key = folder.name
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return (len(key) == 24 and set(key) <= KEY_CHARS and names <= {"model.pt", "meta.json"}
            and "meta.json" in names and meta.get("key") == key
            and meta.get("stage") == folder.parent.name)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class ModelCache:
    """Stores state dicts under content keys; safe with several processes and hosts.

    Args:
        root: the cache folder (``cache_dir``); on a cluster, a filesystem every node sees
            and that supports ``flock`` (NFSv4, most parallel filesystems).
    """

    def __init__(self, root: os.PathLike):
        self.root = Path(root)

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def mark(self) -> None:
        """Writes CACHEDIR.TAG once (atomically): the marker ``clear`` requires."""
        path = self.root / MARKER
        if not path.exists():
            tmp = self.root / f"{TMP_PREFIX}{MARKER}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.write_text(MARKER_TEXT)
            os.replace(tmp, path)

    def check_writable(self) -> None:
        """Raises ConfigError(``cache_dir``) unless entries can be written here (before any work)."""
        from unlearnbench.errors import ConfigError

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f"{TMP_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
            self.mark()
        except OSError as err:
            raise ConfigError("cache_dir", f"cannot write to {self.root} ({err.strerror or err})") from err

    @contextmanager
    def _lock(self, stage: str, key: str, blocking: bool = True) -> Iterator[bool]:
        """Exclusive lock of one key; yields False if ``blocking`` is off and it is taken."""
        path = self.root / stage / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.mark()
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            except OSError as err:  # e.g. a filesystem mounted without lock support
                if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise RuntimeError(f"cache_dir={self.root}: the filesystem does not support file "
                                       "locks; put the cache on one that does (local disk, NFSv4)") from err
                raise
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, stage: str, key: str, device) -> Tuple[StateDict, Dict[str, Any]]:
        """Loads an entry; raises FileNotFoundError if absent, CorruptEntry if damaged."""
        import torch

        folder = self.entry(stage, key)
        if not folder.is_dir():
            raise FileNotFoundError(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            blob = (folder / "model.pt").read_bytes()  # hash and load the same bytes
            if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
                raise CorruptEntry(f"checksum of model.pt does not match meta.json ({folder})")
            state = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
        except CorruptEntry:
            raise
        except Exception as err:  # missing file, bad JSON, unpicklable bytes: all damage
            raise CorruptEntry(f"{type(err).__name__}: {err} ({folder})") from err
        return state, meta

    def load(self, stage: str, key: str, device) -> Optional[Tuple[StateDict, Dict]]:
        """The entry if present and intact, else None. Never deletes (see module doc)."""
        try:
            return self._read(stage, key, device)
        except FileNotFoundError:
            return None
        except CorruptEntry as err:
            log.debug("unreadable cache entry (may be mid-replacement): %s", err)
            return None

    def _clean_tmp(self, stage: str, key: str) -> int:
        """Removes temporary folders of ``key`` left by killed writers (call under its lock)."""
        removed = 0
        for tmp in (self.root / stage).glob(f"{TMP_PREFIX}{key}-*"):
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
        if removed:
            log.info("removed %d stale temporary folder(s) of cache key %s", removed, key)
        return removed

    def _write(self, stage: str, key: str, state: StateDict, meta: Dict[str, Any]) -> Dict[str, Any]:
        """Writes an entry atomically; the caller holds the key's lock."""
        import torch

        folder = self.entry(stage, key)
        tmp = folder.parent / f"{TMP_PREFIX}{key}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            buffer = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
            blob = buffer.getvalue()
            _write_synced(tmp / "model.pt", blob)
            meta = {**meta, "sha256": hashlib.sha256(blob).hexdigest(), "created": time.time(),
                    "stage": stage, "key": key}
            _write_synced(tmp / "meta.json", json.dumps(meta, indent=2, default=str).encode())
            if folder.exists():  # a damaged entry: os.replace cannot overwrite a non-empty folder
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return meta

    def save(self, stage: str, key: str, state: StateDict, meta: Dict[str, Any]) -> Dict[str, Any]:
        """Stores ``state`` under ``key`` (replacing any entry); returns the stored meta."""
        with self._lock(stage, key):
            return self._write(stage, key, state, meta)

    def get_or_build(self, stage: str, material: Dict[str, Any], device,
                     build: Callable[[], Tuple[StateDict, Dict[str, Any]]],
                     accept: Optional[Callable[[StateDict], None]] = None
                     ) -> Tuple[StateDict, Dict[str, Any], bool]:
        """Returns (state, meta, hit). ``build`` runs at most once per key across processes.

        ``accept(state)`` may raise CorruptEntry for an intact file whose content is unusable
        (wrong shapes, non-finite weights): such an entry is rebuilt like a damaged one. An
        exception from ``build`` leaves no entry.
        """
        key = content_key(material)
        found = self._accepted(self.load(stage, key, device), accept)
        if found is not None:
            return (*found, True)
        with self._lock(stage, key):
            self._clean_tmp(stage, key)
            try:  # another process may have built it while we waited for the lock
                state, meta = self._accepted(self._read(stage, key, device), accept, strict=True)
                return state, meta, True
            except FileNotFoundError:
                pass
            except CorruptEntry as err:  # under the lock no writer is mid-way: real damage
                log.warning("cache entry is corrupt (%s); rebuilding it", err)
                shutil.rmtree(self.entry(stage, key), ignore_errors=True)
            state, meta = build()
            meta = self._write(stage, key, state, {**meta, "material": material})
            return state, meta, False

    @staticmethod
    def _accepted(found, accept, strict: bool = False):
        """``found`` if ``accept`` takes its state; else None, or CorruptEntry if ``strict``."""
        if found is None or accept is None:
            return found
        try:
            accept(found[0])
        except CorruptEntry as err:
            if strict:
                raise
            log.debug("cache entry refused (%s)", err)
            return None
        return found

    def entries(self, stage: Optional[str] = None) -> Iterator[Entry]:
        """Every entry the marker and the layout vouch for; checksums not verified.

        Nothing is listed in a folder without unlearnbench's CACHEDIR.TAG, and only folders
        laid out as entries (see ``entry_layout_ok``) are: a project folder passed as
        ``--cache-dir`` by mistake yields nothing to delete.
        """
        if not is_cache_root(self.root):
            return
        for meta_path in sorted(self.root.glob(f"{stage or '*'}/*/meta.json")):
            folder = meta_path.parent
            if folder.name.startswith(TMP_PREFIX) or folder.is_symlink() or folder.parent.is_symlink():
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                meta = {}
            if not isinstance(meta, dict) or not entry_layout_ok(folder, meta):
                continue
            yield Entry(folder.parent.name, folder.name, meta, _folder_size(folder), folder)

    def stale_tmp(self, stage: Optional[str] = None) -> List[Path]:
        """Temporary folders whose key is not locked now, i.e. left by killed writers."""
        stale = []
        if not is_cache_root(self.root):
            return stale
        for tmp in sorted(self.root.glob(f"{stage or '*'}/{TMP_PREFIX}*")):
            key = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
            if not (tmp.is_dir() and len(key) == 24 and set(key) <= KEY_CHARS):
                continue
            with self._lock(tmp.parent.name, key, blocking=False) as free:
                if free:
                    stale.append(tmp)
        return stale

    def remove(self, entry: Entry) -> bool:
        """Deletes one entry under its lock (a concurrent writer of that key finishes first)."""
        with self._lock(entry.stage, entry.key):
            if not entry.path.exists():
                return False
            shutil.rmtree(entry.path)
        # The empty .lock file stays: unlinking it while another process waits on it would
        # let a third process lock a new inode and write the same key concurrently.
        return True
