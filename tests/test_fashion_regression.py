"""The Fashion-MNIST regression table on a small slice: seed 0 of three methods on the random
forget set, re-run from scratch and checked against conf/table/fashion.expect.csv (the
3-seed means of ``make table-fashion``). ``make check-fashion`` does the whole seed-0 table.
"""

import os
from pathlib import Path

import pytest

from unlearnbench import expect
from unlearnbench.reports.load import load_runs
from unlearnbench.reports.summary import Table
from unlearnbench.config import config_dir

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FASHION = Path(os.environ.get("UNLEARNBENCH_DATA", _SHARED)) / "FashionMNIST" / "raw"
EXPECT = Path(config_dir()) / "table" / "fashion.expect.csv"
METHODS = ("finetune", "random_label", "scrub")  # a gradient method, random labels, SCRUB (clipped)


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Fashion-MNIST (set UNLEARNBENCH_DATA)")
def test_fashion_slice_matches_the_expect_file(tmp_path):
    from unlearnbench import run

    for method in METHODS:
        run([f"data_root={FASHION.parents[1]}", "dataset=fashion_mnist", "model=mlp", "table=fashion",
             "forget=random", "seed=0", f"method={method}", f"output_root={tmp_path}", "progress=false"])
    wanted = expect.read_expect(str(EXPECT))
    wanted = wanted[wanted["method"].isin(METHODS) & wanted["forget"].str.startswith("random")]
    assert len(wanted) == 5 * len(METHODS)  # five metrics per cell
    t = Table(load_runs([str(tmp_path)]), ["method"], ["forget"], sorted(set(wanted["metric"])))
    result = expect.check(t.stats, wanted, ["method", "forget"])
    assert expect.passed(result), expect.render(result, ["method", "forget"])
