"""The model cache under damage and concurrency, its CLI, and run provenance."""

import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from unlearnbench.cache import ModelCache, content_key
from unlearnbench.cache_cli import main as cache_main
from unlearnbench.results import git_commit_of

CPU = torch.device("cpu")
MATERIAL = {"what": "tiny", "seed": 0}
KEY = content_key(MATERIAL)


def tiny_state(value: float = 1.0):
    return {"w": torch.full((4, 3), value), "b": torch.arange(3.0)}


def builder(calls: list, value: float = 1.0):
    def build():
        calls.append(value)
        return tiny_state(value), {"train_s": 0.5}

    return build


def test_second_request_is_a_hit_with_identical_tensors(tmp_path):
    cache, calls = ModelCache(tmp_path), []
    state, meta, hit = cache.get_or_build("original", MATERIAL, CPU, builder(calls))
    again, meta2, hit2 = cache.get_or_build("original", MATERIAL, CPU, builder(calls, 2.0))
    assert (hit, hit2, calls) == (False, True, [1.0])
    assert torch.equal(again["w"], torch.full((4, 3), 1.0)) and meta2["key"] == KEY
    assert meta2["material"] == MATERIAL and meta2["train_s"] == 0.5


def test_byte_flipped_model_is_detected_warned_and_rebuilt(tmp_path, caplog):
    cache, calls = ModelCache(tmp_path), []
    cache.get_or_build("oracle", MATERIAL, CPU, builder(calls))
    model_pt = cache.entry("oracle", KEY) / "model.pt"
    blob = bytearray(model_pt.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    model_pt.write_bytes(bytes(blob))
    assert cache.load("oracle", KEY, CPU) is None  # a lock-free read refuses it...
    assert model_pt.exists()  # ...but does not delete it (it might be mid-replacement)
    with caplog.at_level(logging.WARNING, logger="unlearnbench.cache"):
        state, _, hit = cache.get_or_build("oracle", MATERIAL, CPU, builder(calls, 3.0))
    assert "checksum" in caplog.text and "rebuilding" in caplog.text
    assert not hit and calls == [1.0, 3.0] and float(state["w"][0, 0]) == 3.0
    assert float(cache.load("oracle", KEY, CPU)[0]["w"][0, 0]) == 3.0


def test_half_removed_entry_without_meta_is_rebuilt(tmp_path):
    cache, calls = ModelCache(tmp_path), []
    cache.get_or_build("original", MATERIAL, CPU, builder(calls))
    (cache.entry("original", KEY) / "meta.json").unlink()
    assert cache.load("original", KEY, CPU) is None and list(cache.entries()) == []
    _, _, hit = cache.get_or_build("original", MATERIAL, CPU, builder(calls))
    assert not hit and len(calls) == 2 and len(list(cache.entries())) == 1


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys, torch
    import unlearnbench.cache as cache

    def half_then_die(path, data):
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    cache._write_synced = half_then_die
    cache.ModelCache(sys.argv[1]).get_or_build(
        "original", {"what": "tiny", "seed": 0}, torch.device("cpu"),
        lambda: ({"w": torch.ones(4, 3)}, {"train_s": 0.1}))
""")


def test_writer_killed_mid_write_leaves_nothing_loadable_and_is_cleaned(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert proc.returncode == -9  # really killed inside the write
    cache = ModelCache(tmp_path)
    assert cache.load("original", KEY, CPU) is None and list(cache.entries()) == []
    stale = cache.stale_tmp()
    assert len(stale) == 1 and stale[0].name.startswith(f".tmp-{KEY}-")
    calls = []
    _, _, hit = cache.get_or_build("original", MATERIAL, CPU, builder(calls))
    assert not hit and calls == [1.0]
    assert cache.stale_tmp() == [] and not stale[0].exists()  # the next writer swept it


def _race(root: str, out: str) -> None:
    def build():
        time.sleep(0.3)  # widen the window in which a second builder could sneak in
        with open(out, "a") as f:
            f.write(f"{os.getpid()}\n")
        return tiny_state(), {"train_s": 0.3}

    _, _, hit = ModelCache(root).get_or_build("original", MATERIAL, CPU, build)
    with open(out + ".hits", "a") as f:
        f.write(f"{int(hit)}\n")


def test_four_processes_racing_build_once(tmp_path):
    ctx = mp.get_context("fork")
    out = str(tmp_path / "builds")
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "cache"), out)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 4
    assert len(Path(out).read_text().split()) == 1
    assert sorted(Path(out + ".hits").read_text().split()) == ["0", "1", "1", "1"]
    assert len(list(ModelCache(tmp_path / "cache").entries())) == 1


def _fill(root: Path) -> ModelCache:
    cache = ModelCache(root)
    for stage in ("original", "oracle"):
        for seed in (0, 1):
            cache.get_or_build(stage, {"seed": seed}, CPU, lambda: (tiny_state(), {"train_s": 1.0}))
    old = cache.entry("oracle", content_key({"seed": 0})) / "meta.json"
    meta = json.loads(old.read_text())
    old.write_text(json.dumps({**meta, "created": time.time() - 10 * 86400}))  # 10 days old
    (root / "oracle" / f".tmp-{content_key({'seed': 5})}-host-1-abcd").mkdir()
    return cache


def test_cache_cli_list_du_clear_with_filters(tmp_path, capsys):
    cache = _fill(tmp_path)
    cache_main(["list", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "4 entries, 1 stale temporary folders" in out and out.count("oracle ") == 3
    cache_main(["du", "--cache-dir", str(tmp_path), "--stage", "original"])
    assert "original      2 entries" in capsys.readouterr().out
    cache_main(["clear", "--cache-dir", str(tmp_path), "--older-than", "7", "--dry-run"])
    assert len(list(cache.entries())) == 4
    cache_main(["clear", "--cache-dir", str(tmp_path), "--stage", "oracle", "--older-than", "7"])
    left = sorted((e.stage, e.key) for e in cache.entries())
    assert ("oracle", content_key({"seed": 0})) not in left and len(left) == 3
    assert cache.stale_tmp() == []
    with pytest.raises(SystemExit, match="pass --yes"):  # the whole cache: asks first
        cache_main(["clear", "--cache-dir", str(tmp_path)])
    assert len(list(cache.entries())) == 3
    cache_main(["clear", "--cache-dir", str(tmp_path), "--yes"])
    assert list(cache.entries()) == []


def test_cache_cli_does_not_import_torch(tmp_path):
    code = ("import sys; from unlearnbench.cache import ModelCache; ModelCache(sys.argv[1]).mark(); "
            "from unlearnbench.cache_cli import main; "
            f"main(['du', '--cache-dir', {str(tmp_path)!r}]); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})


def test_git_commit_is_unknown_unless_the_package_is_tracked(tmp_path):
    pkg = tmp_path / "repo" / "pkg"
    pkg.mkdir(parents=True)
    assert git_commit_of(pkg) == "unknown"  # not in git at all
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path / "repo", env=env, check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "repo" / "README").write_text("x")
    git("add", "README")
    git("commit", "-qm", "init")
    (pkg / "__init__.py").write_text("")
    assert git_commit_of(pkg) == "unknown"  # e.g. a venv inside someone's checkout
    git("add", "pkg/__init__.py")
    git("commit", "-qm", "pkg")
    head = git("rev-parse", "HEAD")
    assert git_commit_of(pkg) == head
    (pkg / "__init__.py").write_text("x = 1\n")
    assert git_commit_of(pkg) == head + "-dirty"


def test_every_row_carries_provenance(run_pipeline):
    frame = run_pipeline(["method=finetune"])
    columns = ["package_version", "git_commit", "method_version", "torch_version", "device_name",
               "original_cache_key", "oracle_cache_key"]
    for col in columns:
        assert frame[col].notna().all() and frame[col].astype(str).str.len().min() > 0, col
    assert (frame.torch_version == torch.__version__).all() and (frame.device_name == "cpu").all()
    assert frame.original_cache_key.nunique() == 1 and len(frame.original_cache_key.iloc[0]) == 24
