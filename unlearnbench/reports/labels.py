"""Readable metric labels for figures, from the metric's name and its ``higher_is_better``.

Metrics carry their convention in their name (``forget_acc``: a fraction, ``rte_s``: seconds)
and their direction in metrics.csv's ``higher_is_better`` column, so every metric, a plugin's
included, gets a label without a per-metric table: ``forget_acc`` with "" (closer to the
oracle) -> "Forget accuracy (≈ oracle)", ``rte_s`` with "false" -> "Run time (s) ↓".
"""

from __future__ import annotations

# The field's abbreviations spelled out; any other word of a name is kept as it is.
WORDS = {
    "acc": "accuracy", "auc": "AUC", "avg": "average", "conf": "confidence", "disc": "discriminator",
    "gan": "GAN", "js": "JS", "linf": "L∞ distance", "lr": "LR", "mia": "MIA", "norm": "normalised",
    "rte": "run time", "spd": "SPD", "svc": "SVC", "tow": "ToW", "val": "validation", "vs": "vs",
    "zrf": "ZRF",
}
UNITS = {"s": "(s)"}  # a name's last word that is a unit, not a noun
DIRECTIONS = {"true": "↑", "false": "↓", "": "(≈ oracle)"}


def words(metric: str) -> str:
    """``mia_loss_auc`` -> "MIA loss AUC"; ``method.kl_weight`` -> "Method: kl weight"."""
    prefix, _, name = metric.rpartition(".")
    parts = name.split("_")
    unit = UNITS.get(parts[-1]) if len(parts) > 1 else None
    text = " ".join(WORDS.get(p, p) for p in (parts[:-1] if unit else parts))
    text = f"{text} {unit}" if unit else text
    if prefix:
        text = f"{prefix}: {text}"
    return text[:1].upper() + text[1:]


def label(metric: str, higher_is_better: str = "") -> str:
    """A figure label: the metric in words, then its direction (↑, ↓ or "(≈ oracle)").

    Args:
        metric: the metrics.csv name.
        higher_is_better: metrics.csv's column: "true", "false", or "" (closer to the
            oracle is better).
    """
    return f"{words(metric)} {DIRECTIONS.get(str(higher_is_better).lower(), '')}".strip()
