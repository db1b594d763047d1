"""``unlearnbench-cache list|du|clear``: inspect and prune the model cache.

Only the standard library is imported (torch is not needed to list or delete entries), so
the command answers instantly. Deletions take each key's lock, so clearing while a sweep
runs never removes an entry that is being written. Nothing is deleted in a folder without
unlearnbench's CACHEDIR.TAG, only folders laid out as entries are, and clearing a whole
cache asks first unless ``--yes``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from unlearnbench.cache import MARKER, Entry, ModelCache, _folder_size, is_cache_root

DAY_S = 86400.0


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _age_days(entry: Entry, now: float) -> float:
    created = entry.meta.get("created")
    if not isinstance(created, (int, float)):
        created = (entry.path / "meta.json").stat().st_mtime
    return (now - created) / DAY_S


def _describe(entry: Entry) -> str:
    material = entry.meta.get("material", {})
    if entry.stage == "reference":  # an original's or oracle's metrics (unlearnbench/references.py)
        names = [e.get("name", "?") for e in material.get("evaluators", [])]
        return f"{entry.meta.get('role', '?')} metrics of {len(names)} evaluators seed={material.get('seed', '?')}"
    proxy = material.get("proxy")  # memorization scores: heldout (K models) or an original's events
    material = material.get("original", material)
    dataset = material.get("dataset", {}).get("name", "?")
    model = material.get("model", {}).get("name", "?")
    if proxy == "heldout":
        return f"{dataset}-{model} heldout K={material.get('k_models', '?')}"
    what = f"{dataset}-{model} seed={material.get('seed', '?')}"
    return what if proxy is None else f"{what} {proxy}"


def selected(cache: ModelCache, stage: Optional[str], older_than: Optional[float],
             now: Optional[float] = None) -> List[Entry]:
    """Entries of ``stage`` (all if None) created more than ``older_than`` days ago."""
    now = time.time() if now is None else now
    return [e for e in cache.entries(stage)
            if older_than is None or _age_days(e, now) > older_than]


def cmd_list(cache: ModelCache, args) -> None:
    now = time.time()
    rows = selected(cache, args.stage, args.older_than, now)
    for e in rows:
        train_s = e.meta.get("train_s")
        train = f"{train_s:8.1f}s" if isinstance(train_s, (int, float)) else "       ?"
        print(f"{e.stage:9s} {e.key}  {_human(e.size_bytes):>10s}  {_age_days(e, now):6.1f}d  "
              f"train {train}  {_describe(e)}")
    stale = cache.stale_tmp(args.stage)
    for tmp in stale:
        print(f"{tmp.parent.name:9s} {tmp.name}  {_human(_folder_size(tmp)):>10s}  stale (writer killed)")
    print(f"{len(rows)} entries, {len(stale)} stale temporary folders in {cache.root}")


def cmd_du(cache: ModelCache, args) -> None:
    totals = {}
    for e in selected(cache, args.stage, args.older_than):
        count, size = totals.get(e.stage, (0, 0))
        totals[e.stage] = (count + 1, size + e.size_bytes)
    stale = sum(_folder_size(t) for t in cache.stale_tmp(args.stage))
    for stage, (count, size) in sorted(totals.items()):
        print(f"{stage:9s} {count:5d} entries  {_human(size):>10s}")
    if stale:
        print(f"{'stale tmp':9s} {'':14s}  {_human(stale):>10s}")
    print(f"{'total':9s} {sum(c for c, _ in totals.values()):5d} entries  "
          f"{_human(sum(s for _, s in totals.values()) + stale):>10s}  {cache.root}")


def confirmed(cache: ModelCache, args, count: int) -> bool:
    """Clearing a whole cache asks first (``--yes`` skips it; without a terminal it refuses)."""
    if args.dry_run or args.yes or args.stage or args.older_than is not None or not count:
        return True
    if not sys.stdin.isatty():
        sys.exit(f"unlearnbench-cache: clear would delete all {count} entries of {cache.root}; "
                 "pass --yes to confirm (or --stage/--older-than to select)")
    answer = input(f"Delete all {count} entries of {cache.root}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_clear(cache: ModelCache, args) -> None:
    rows = selected(cache, args.stage, args.older_than)
    if not confirmed(cache, args, len(rows)):
        print("nothing deleted")
        return
    freed, removed = 0, 0
    for e in rows:
        if args.dry_run or cache.remove(e):
            freed, removed = freed + e.size_bytes, removed + 1
            print(f"{'would remove' if args.dry_run else 'removed'} {e.stage}/{e.key}")
    for tmp in cache.stale_tmp(args.stage):
        freed += _folder_size(tmp)
        if not args.dry_run:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{'would remove' if args.dry_run else 'removed'} {tmp.parent.name}/{tmp.name}")
    print(f"{'would free' if args.dry_run else 'freed'} {_human(freed)} ({removed} entries)")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="unlearnbench-cache", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "du", "clear"])
    parser.add_argument("--cache-dir", default="outputs/cache",
                        help="the cache_dir the runs used (default: outputs/cache, the config default)")
    parser.add_argument("--stage", help="only this stage, e.g. original or oracle")
    parser.add_argument("--older-than", type=float, metavar="DAYS",
                        help="only entries created more than DAYS days ago")
    parser.add_argument("--dry-run", action="store_true", help="clear: print, delete nothing")
    parser.add_argument("--yes", action="store_true", help="clear: delete every entry without asking")
    args = parser.parse_args(argv)
    cache = ModelCache(Path(args.cache_dir))
    if not cache.root.is_dir():
        sys.exit(f"unlearnbench-cache: --cache-dir {cache.root} does not exist")
    if not is_cache_root(cache.root):  # never judge a folder a cache by its layout alone
        sys.exit(f"unlearnbench-cache: {cache.root} is not an unlearnbench cache (no {MARKER} made by "
                 "unlearnbench); nothing done. A run with cache_dir=<that folder> creates it.")
    {"list": cmd_list, "du": cmd_du, "clear": cmd_clear}[args.command](cache, args)


if __name__ == "__main__":
    main()
