"""Print a table's footnotes (``notes`` of conf/table/<table>.yaml) as Markdown, for make table-*.

    python scripts/table_notes.py del >> outputs/tables/del.md
"""

import sys
from pathlib import Path

from omegaconf import OmegaConf

from unlearnbench.config import config_dir


def notes(table: str) -> str:
    cfg = OmegaConf.load(Path(config_dir()) / "table" / f"{table}.yaml")
    lines = [f"Notes ({cfg.name}: per-method recipes conf/recipe/{cfg.name}/; code {cfg.code or 'none'}):"]
    lines += [f"{i}. {note}" for i, note in enumerate(cfg.get("notes") or [], 1)]
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n" + notes(sys.argv[1]))
