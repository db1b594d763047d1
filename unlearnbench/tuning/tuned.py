"""Tuned-parameter files: what ``unlearnbench-tune`` writes and ``+tuned=<file>`` reads.

A tuned file holds the method it belongs to and its best parameters as dotted config keys.
``+tuned=<file>`` turns into those overrides *before* the config is composed, so a tuned run's
config, ``.hydra/config.yaml`` and run dir hash all show the tuned values; the ``tuned`` key
itself stays in the config as provenance. Overrides the user writes win over the file's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml

from unlearnbench.errors import ConfigError

TUNED_OVERRIDE = re.compile(r"^\+{0,2}tuned=(?P<path>.*)$")
REQUIRED = ("method", "params")


def read_tuned(path: str) -> Dict[str, Any]:
    """The tuned file at ``path``; ConfigError naming ``tuned`` if absent or malformed."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError("tuned", f"no tuned-parameter file at {file}")
    data = yaml.safe_load(file.read_text()) or {}
    missing = [k for k in REQUIRED if k not in data]
    if missing or not isinstance(data.get("params"), dict):
        raise ConfigError("tuned", f"{file} is not a tuned-parameter file (needs 'method' and a "
                                   f"'params' mapping of dotted keys; unlearnbench-tune writes them)")
    bad = [k for k in data["params"] if not str(k).startswith("method.")]
    if bad:
        raise ConfigError("tuned", f"{file}: only method.* keys may be tuned, got {bad}")
    return data


def override_value(value: Any) -> str:
    """A Python scalar as Hydra's override grammar reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z_][\w.\-]*", text) else "'" + text.replace("'", "\\'") + "'"


def expand_tuned(overrides: Sequence[str]) -> List[str]:
    """``overrides`` with each ``+tuned=<file>`` followed by the file's parameters.

    A key the user overrides anywhere in ``overrides`` keeps the user's value. ``+tuned=a,b``
    (a sweep over files) is refused: tuned files are per method, so run one at a time.
    """
    explicit = {ov.split("=", 1)[0].lstrip("+~") for ov in overrides if "=" in ov}
    out: List[str] = []
    for ov in overrides:
        out.append(ov)
        match = TUNED_OVERRIDE.match(ov)
        if match is None:
            continue
        path = match["path"]
        if "," in path and not os.path.exists(path):
            raise ConfigError("tuned", "takes one file; run each method with its own tuned file")
        out += [f"{k}={override_value(v)}" for k, v in read_tuned(path)["params"].items()
                if k not in explicit]
    return out


def write_tuned(path: Path, method: str, params: Dict[str, Any], about: Dict[str, Any]) -> None:
    """Writes a tuned file atomically; ``about`` records where the parameters came from."""
    body = {"method": method, "params": dict(params), **about}
    head = (f"# Tuned by unlearnbench-tune. Use: unlearnbench method={method} +tuned={path}\n"
            "# params are applied as overrides before the config is composed; yours win.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(head + yaml.safe_dump(body, sort_keys=False))
    os.replace(tmp, path)
