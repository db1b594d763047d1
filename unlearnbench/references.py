"""Reference rows computed once: the original's and the oracle's metrics, reused across a sweep.

Every run of a sweep over methods evaluates the same original and oracle with the same
evaluators; with SVC attacks, SPD or relearning that is most of a run's evaluation time.
Their metrics are stored in the model cache (stage ``reference``, so ``unlearnbench-cache``
lists and clears them) under a key of everything that determines them:

- what the two reference models are: a hash of their weights (not their training key, so
  a retrained or user-supplied model never meets another model's numbers);
- the data (``DataBundle.fingerprint``), the forget set's indices, the run seed (evaluators
  draw named random streams from it), the recipe (relearning trains with it), the device type;
- each evaluator's name and parameters, and a hash of the evaluation code.

Only evaluators that declare ``reusable_reference`` are served from it: their value on a
reference role depends on nothing but the above, and they leave no state or random-number
draws the unlearned model's evaluation relies on. ``efficiency`` (wall-clock seconds) is
always computed afresh.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from unlearnbench.cache import ModelCache, array_sha, content_key

STAGE = "reference"
# Bump when evaluation changes results in a way the source hash below cannot see.
REFERENCE_VERSION = "1"
REFERENCE_ROLES = ("retrain", "original")
_CODE_DIRS = ("evaluators", "engine")


def weights_sha(model: nn.Module) -> str:
    """Content hash of a model's state dict (names, dtypes, shapes and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def evaluation_code_sha() -> str:
    """Hash of the source of the evaluators and the engine they score and train with."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for folder in _CODE_DIRS:
        for path in sorted((root / folder).glob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


class ReferenceRows:
    """Load and store one run's reference metrics, per role, per reusable evaluator.

    Args:
        cache: the run's model cache; ``None`` turns reuse off (everything is computed).
        material: the part of the key shared by both roles (see ``reference_material``).
    """

    def __init__(self, cache: Optional[ModelCache], material: Dict[str, Any]):
        self.cache, self.material = cache, material
        self.hits: Dict[str, bool] = {}

    def key(self, role: str) -> str:
        return content_key({**self.material, "role": role})

    def load(self, role: str) -> Dict[str, Dict[str, float]]:
        """evaluator name -> metrics stored for ``role`` (empty when absent or reuse is off)."""
        found = None if self.cache is None else self.cache.load(STAGE, self.key(role), "cpu")
        stored = {} if found is None else found[1].get("metrics", {})
        self.hits[role] = bool(stored)
        return stored

    def save(self, role: str, metrics: Dict[str, Dict[str, float]]) -> None:
        if self.cache is not None and metrics:
            plain = {ev: {name: float(v) for name, v in values.items()} for ev, values in metrics.items()}
            self.cache.save(STAGE, self.key(role), {}, {"metrics": plain, "role": role, "material": self.material})

    @property
    def all_hit(self) -> bool:
        return bool(self.hits) and all(self.hits.get(r, False) for r in REFERENCE_ROLES)


def reference_material(evaluators: List[Any], models: Dict[str, nn.Module], data_fingerprint: str,
                       forget_idx: torch.Tensor, seed: int, recipe: Dict[str, Any],
                       device: torch.device) -> Dict[str, Any]:
    """Everything that determines a reference role's metrics, minus the role itself."""
    return {"version": REFERENCE_VERSION, "code": evaluation_code_sha(),
            "weights": {role: weights_sha(models[role]) for role in REFERENCE_ROLES},
            "data": data_fingerprint, "forget": array_sha(forget_idx.cpu().numpy().tobytes()),
            "seed": seed, "recipe": recipe, "device": device.type,
            "evaluators": [ev.spec for ev in evaluators if ev.reusable_reference]}
