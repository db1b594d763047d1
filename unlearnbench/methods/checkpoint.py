"""``checkpoint``: an unlearned model made elsewhere, evaluated like any method's output.

``method=checkpoint method.path=unlearned.pt`` loads a state dict of the configured
architecture (``weights_only``: tensors only, no code) in place of running a method, so a
model unlearned by another codebase meets the same original, oracle and evaluators.
Its ``rte_s`` is the load time, not the other codebase's unlearning time.
"""

from pathlib import Path
from typing import Optional

from unlearnbench.cache import file_sha256
from unlearnbench.checkpoints import read_state_dict
from unlearnbench.errors import ConfigError
from unlearnbench.methods.base import Method, Unlearned
from unlearnbench.registry import METHODS


@METHODS.register("checkpoint")
class Checkpoint(Method):
    version = "1"

    def __init__(self, path: Optional[str] = None):
        if not path:
            raise ConfigError("method.path", "set it to the unlearned model's state dict (a .pt file)")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise ConfigError("method.path", f"no file at {self.path}")

    def unlearn(self, model, data, ctx):
        model.load_state_dict(read_state_dict(self.path, "method.path", model))
        return Unlearned(model, details={"path": str(self.path), "sha256": file_sha256(self.path)})
