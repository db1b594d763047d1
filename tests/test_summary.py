"""The end-of-run summary table (unlearnbench.summary)."""

import pandas as pd

from unlearnbench.summary import summary_text


def _rows(role, **values):
    return [{"role": role, "metric": m, "value": v} for m, v in values.items()]


def test_summary_text_two_metrics_three_roles():
    frame = pd.DataFrame(_rows("original", forget_acc=0.98765, test_acc=0.9, val_acc=0.5)
                         + _rows("retrain", forget_acc=0.5, test_acc=0.91234, rte_s=10.0)
                         + _rows("unlearned", forget_acc=0.1, test_acc=0.8996, rte_s=1.23456,
                                 speedup_vs_retrain=8.1))
    assert summary_text(frame, "out/runs/x/seed0") == (
        "metric     unlearned    oracle  original\n"
        "forget_acc     0.100     0.500     0.988\n"
        "test_acc       0.900     0.912     0.900\n"
        "run dir out/runs/x/seed0  rte_s 1.235  speedup_vs_retrain 8.100")


def test_summary_text_missing_role_and_timing():
    frame = pd.DataFrame(_rows("unlearned", retain_acc=0.25) + _rows("original", retain_acc=1.0))
    assert summary_text(frame, "d") == (
        "metric     unlearned    oracle  original\n"
        "retain_acc     0.250         -     1.000\n"
        "run dir d")
