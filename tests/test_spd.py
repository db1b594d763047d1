"""SPD-GAN unlearning degree: the ε bound, the UD arithmetic, both modes, caching, bad keys."""

import math

import pytest
import torch

from conftest import metric
from unlearnbench.errors import ConfigError
from unlearnbench.evaluators import spd as spd_module
from unlearnbench.evaluators.spd import unlearning_degree
from unlearnbench.evaluators.spd_gan import Generator, PixelMap, linf_pixels, perturb

EPS = 8 / 255
SMOKE = ["eval=spd", "eval.params.spd.max_examples=200",
         "eval.params.spd.min_target=0"]


def test_perturbation_is_within_epsilon_in_pixel_scale():
    torch.manual_seed(0)
    mean, std = torch.tensor([0.29, 0.51, 0.7]), torch.tensor([0.35, 0.12, 0.2])
    pix = PixelMap(mean, std, torch.device("cpu"))
    pixels = torch.rand(64, 3, 9, 7)
    pixels[:8] = pixels[:8].round()  # exact 0/1 pixels exercise the clipping
    x = pix.normalise(pixels)
    gen = Generator((3, 9, 7), 5, 2, 8)
    with torch.no_grad():  # large weights saturate tanh, so |δ| reaches ε
        for p in gen.parameters():
            p.mul_(50)
    y, z = torch.randint(0, 5, (64,)), torch.randn(64, 2)
    with torch.no_grad():
        x_new = perturb(gen, x, z, y, pix, EPS)
    linf = linf_pixels(x, x_new, pix)
    assert linf <= EPS
    assert linf > 0.99 * EPS
    p_new = pix.to_pixels(x_new)
    assert float(p_new.min()) >= -1e-6 and float(p_new.max()) <= 1 + 1e-6


def test_unlearning_degree_arithmetic():
    assert unlearning_degree(0.9, 0.8, 0.7, 0.005) == pytest.approx((0.1, 0.5))
    assert unlearning_degree(0.9, 0.9, 0.7, 0.005) == (0.0, 0.0)  # the original itself
    assert unlearning_degree(0.9, 0.7, 0.7, 0.005) == pytest.approx((0.2, 1.0))  # the oracle
    ud, norm = unlearning_degree(0.9, 0.85, 0.898, 0.005)  # oracle not separated: no ratio
    assert ud == pytest.approx(0.05) and math.isnan(norm)


@pytest.mark.parametrize("key,value", [("epsilon", 0), ("epsilon", -0.1), ("spd_mode", "bogus"),
                                       ("steps", 0), ("shift_target_conf", 1.0)])
def test_bad_keys_name_the_key(run_cfg, key, value):
    from unlearnbench.pipeline import plan

    with pytest.raises(ConfigError) as err:
        plan(run_cfg(["eval=spd", f"eval.params.spd.{key}={value}"]))
    assert err.value.key == f"eval.params.spd.{key}"


def test_evaluate_mode_reference_rows(run_pipeline):
    frame = run_pipeline([*SMOKE, "method=finetune"])
    a_o, a_r = metric(frame, "spd_forget_acc", "original"), metric(frame, "spd_forget_acc", "retrain")
    assert a_o != a_r  # the smoke models differ on D_f', so the ratio is defined
    assert metric(frame, "spd_unlearning_degree", "original") == 0.0
    assert metric(frame, "spd_unlearning_degree", "retrain") == pytest.approx(a_o - a_r)
    assert metric(frame, "spd_unlearning_degree_norm", "original") == 0.0
    assert metric(frame, "spd_unlearning_degree_norm", "retrain") == pytest.approx(1.0)
    a_u = metric(frame, "spd_forget_acc")
    assert metric(frame, "spd_unlearning_degree_norm") == pytest.approx((a_o - a_u) / (a_o - a_r))
    for role in ("original", "retrain", "unlearned"):
        assert 0 < metric(frame, "spd_linf", role) <= EPS
        assert 0 <= metric(frame, "spd_disc_acc", role) <= 1
        assert 0 <= metric(frame, "spd_forget_conf", role) <= 1


def test_target_below_min_target_gives_nan_not_a_number(run_pipeline):
    frame = run_pipeline([*SMOKE[:-1], "eval.params.spd.min_target=1.0"])
    for role in ("original", "retrain", "unlearned"):
        assert math.isnan(metric(frame, "spd_unlearning_degree_norm", role))
    assert not math.isnan(metric(frame, "spd_unlearning_degree", "retrain"))


def test_generator_is_trained_once_and_cached_across_methods(run_pipeline, monkeypatch):
    calls = []
    real = spd_module.train_gan
    monkeypatch.setattr(spd_module, "train_gan", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = run_pipeline([*SMOKE, "method=finetune"], name="a")
    assert len(calls) == 1  # once per run, not once per role
    b = run_pipeline([*SMOKE, "method=gradient_ascent"], name="b")
    assert len(calls) == 1  # second run: cache hit
    for role in ("original", "retrain"):
        for m in ("spd_forget_acc", "spd_gan_s", "spd_disc_acc", "spd_linf"):
            assert metric(a, m, role) == metric(b, m, role)


def test_inject_mode_trains_the_original_on_the_perturbed_forget_set(run_pipeline):
    plain = run_pipeline(SMOKE, name="plain")
    inject = run_pipeline([*SMOKE, "eval.params.spd.spd_mode=inject"], name="inject")
    # The oracle never sees D_f: same cache entry. The original trained on D_f': new entry.
    assert inject.oracle_cache_key.iloc[0] == plain.oracle_cache_key.iloc[0]
    assert inject.original_cache_key.iloc[0] != plain.original_cache_key.iloc[0]
    for role in ("original", "retrain", "unlearned"):
        # The forget split now is D_f' itself, so both accuracies read the same tensor.
        assert metric(inject, "forget_acc", role) == metric(inject, "spd_forget_acc", role)
        assert metric(inject, "spd_linf", role) <= EPS
    # Same generator in both modes (one cache entry): the oracle's D_f' accuracy agrees.
    assert metric(inject, "spd_forget_acc", "retrain") == metric(plain, "spd_forget_acc", "retrain")
    assert metric(inject, "spd_unlearning_degree", "original") == 0.0


def test_prepare_data_hooks_may_only_rewrite_forget_inputs():
    from dataclasses import replace

    import numpy as np

    from unlearnbench.data.bundle import DataBundle, Split
    from unlearnbench.data.forget.base import ForgetSet
    from unlearnbench.evaluators.base import Evaluator
    from types import SimpleNamespace

    from unlearnbench.pipeline import inject_stage

    split = Split(torch.zeros(6, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1]))
    data = DataBundle("toy", split, split.subset(torch.arange(2)), split.subset(torch.arange(2)), 2,
                      torch.zeros(1), torch.ones(1))
    forget = ForgetSet.from_forget(np.array([1, 3]), 6, "forget")

    class Rewrite(Evaluator):
        def __init__(self, rows):
            self.rows = rows

        def prepare_data(self, data, forget, ctx):
            x = data.train.x.clone()
            x[self.rows] = 0.5
            return replace(data, train=Split(x, data.train.y))

    assert inject_stage(SimpleNamespace(evaluators=[Evaluator()]), data, forget, None) == (data, None)
    new, sha = inject_stage(SimpleNamespace(evaluators=[Rewrite([1, 3])]), data, forget, None)
    assert float(new.train.x[[1, 3]].min()) == 0.5 and float(new.train.x[[0, 2, 4, 5]].abs().max()) == 0
    assert isinstance(sha, str) and len(sha) == 16
    with pytest.raises(RuntimeError, match="forget rows"):
        inject_stage(SimpleNamespace(evaluators=[Rewrite([1, 2])]), data, forget, None)  # row 2 is a retain row
