"""Reading pickled data files (CIFAR batches) without running code from them.

``pickle.load`` calls whatever a file names, so a crafted ``data_batch_1`` in a data folder
would run a command. This unpickler resolves only what a CIFAR batch is made of: builtin
containers and scalars, and numpy's array reconstruction. Every pickle the project reads
goes through ``load``; model files go through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from unlearnbench.errors import DataError

# (module, name) pairs a CIFAR batch needs; numpy 2 moved ``core`` to ``_core``.
ALLOWED = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
})


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name} (not part of a data batch)")
        return super().find_class(module, name)


def load(path: Path, key: str) -> Any:
    """The object pickled in ``path``, built from allowed types only.

    Args:
        path: the file.
        key: the config key that located it (``data_root``), named in the error.

    Raises:
        DataError: the file names anything else (a crafted file) or is not a pickle.
    """
    try:
        with open(path, "rb") as f:
            return _Restricted(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as err:
        raise DataError(key, f"{path} is damaged or not a data batch; nothing in it was run "
                             f"({type(err).__name__}: {err})") from err
