"""Per-example statistics of every role's model, written to ``scores.npz`` for audits.

Population metrics (metrics.csv) pool the forget set into one number; per-example audits
(``unlearnbench-audit``) need each example's statistic under each model of a seed
population. Each run therefore keeps, for the forget set, a fixed retain sample and the
test split, and for the original, the oracle and the unlearned model:

- ``margin``: z_y − logsumexp_{j≠y} z_j, computed in float64. It equals LiRA's
  logit-scaled confidence log(p_y / (1 − p_y)) and KLOM's margin, so one array serves
  U-LiRA, the ε-score and KLOM.
- ``loss``: the cross-entropy −log p_y.

File layout (docs/audit.md): ``index.<split>`` (int64 positions: training-split indices
for forget and retain, test-split indices for test), ``label.<split>`` (int64) and
``<stat>.<role>.<split>`` (float32), plus ``format`` (the layout's version).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, Mapping

import numpy as np
import torch

from unlearnbench.evaluators.base import ROLES, Scored

FORMAT = 1
SPLITS = ("forget", "retain", "test")


def margins_and_losses(logits: torch.Tensor, labels: torch.Tensor):
    """(margin, loss) per row in float64: margin = z_y − logsumexp_{j≠y} z_j, loss = −log p_y."""
    z = logits.detach().double().cpu()
    y = labels.detach().long().cpu().view(-1, 1)
    true = z.gather(1, y).squeeze(1)
    others = z.scatter(1, y, float("-inf")).logsumexp(1)
    loss = torch.logsumexp(z, 1) - true
    return (true - others).numpy(), loss.numpy()


def retain_sample(forget_idx: np.ndarray, retain_idx: np.ndarray) -> np.ndarray:
    """Positions into ``retain_idx`` of a retain sample as large as the forget set.

    Seeded by a hash of the forget indices, not the run seed: every run of a population
    that forgets the same examples scores the same retain examples.
    """
    digest = hashlib.sha256(np.ascontiguousarray(forget_idx, dtype=np.int64).tobytes()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    k = min(len(forget_idx), len(retain_idx))
    return np.sort(rng.choice(len(retain_idx), size=k, replace=False))


def per_example_scores(scored: Mapping[str, Scored], forget_idx: np.ndarray,
                       retain_idx: np.ndarray) -> Dict[str, np.ndarray]:
    """The arrays of ``scores.npz`` from each role's memoised logits (no extra forward pass
    for splits an evaluator already scored)."""
    sample = retain_sample(forget_idx, retain_idx)
    n_test = len(next(iter(scored.values())).splits["test"])
    rows = {"forget": None, "retain": torch.from_numpy(sample), "test": None}
    out: Dict[str, np.ndarray] = {"format": np.array(FORMAT),
                                  "index.forget": np.asarray(forget_idx, dtype=np.int64),
                                  "index.retain": np.asarray(retain_idx, dtype=np.int64)[sample],
                                  "index.test": np.arange(n_test, dtype=np.int64)}
    for role in ROLES:
        for split in SPLITS:
            logits, labels = scored[role].logits(split), scored[role].splits[split].y
            if rows[split] is not None:
                pick = rows[split].to(logits.device)
                logits, labels = logits[pick], labels[pick]
            margin, loss = margins_and_losses(logits, labels)
            out[f"margin.{role}.{split}"] = margin.astype(np.float32)
            out[f"loss.{role}.{split}"] = loss.astype(np.float32)
            out[f"label.{split}"] = labels.cpu().numpy().astype(np.int64)
    return out


def write_scores(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes ``scores.npz`` whole or not at all (temp file + rename)."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
