"""Batched training of many small models: each bank member equals the model trained alone."""

import time

import pytest
import torch
from torch import nn

from unlearnbench.data.bundle import Split
from unlearnbench.engine import Recipe, RunContext, fit
from unlearnbench.engine.bank import can_vmap, random_halves, train_bank

CPU = torch.device("cpu")


def _data(n=120):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 6, 6, generator=g)
    y = (x[:, 0, :3].sum((1, 2)) > 0).long() + 2 * (x[:, 0, :, :3].sum((1, 2)) > 0).long()
    return Split(x, y)


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 4))


def _solo(split, mask, seed, recipe, factory=_mlp):
    torch.manual_seed(seed)
    model = factory()
    ctx = RunContext(device=CPU, seed=seed, recipe=recipe, show_progress=False)
    fit(model, split.subset(mask.nonzero().squeeze(1)), recipe, ctx, desc="solo")
    return model.state_dict()


@pytest.mark.parametrize("optimizer,augment", [("sgd", "crop_flip"), ("adamw", "flip"), ("adam", "none")])
def test_bank_member_equals_model_trained_alone(optimizer, augment):
    split = _data()
    # Unequal subsets: the smaller ones run out of batches early and must then stand still.
    masks = torch.rand(3, len(split), generator=torch.Generator().manual_seed(1)) < torch.tensor(
        [[0.3], [0.5], [0.8]])
    recipe = Recipe(epochs=2, batch_size=16, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-3,
                    weight_decay=5e-4, schedule="cosine", warmup_epochs=0.5, augment=augment)
    ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)
    assert can_vmap(_mlp(), recipe)
    bank = train_bank(_mlp, split, masks, recipe, ctx, seeds=[7, 8, 9])
    assert len(bank) == 3
    for k, seed in enumerate([7, 8, 9]):
        alone = _solo(split, masks[k], seed, recipe)
        assert set(bank[k]) == set(alone)
        torch.testing.assert_close(bank[k], alone, rtol=1e-4, atol=1e-5)
    torch.manual_seed(7)
    assert not torch.allclose(bank[0]["1.weight"], _mlp()[1].weight)  # it did train


def test_bank_with_buffers_falls_back_to_fit():
    def bn_model():
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))

    split = _data(64)
    masks = random_halves(len(split), 2, torch.Generator().manual_seed(0))
    assert masks.sum(1).tolist() == [32, 32]
    recipe = Recipe(epochs=1, batch_size=16)
    ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)
    assert not can_vmap(bn_model(), recipe)
    bank = train_bank(bn_model, split, masks, recipe, ctx, seeds=[1, 2])
    torch.testing.assert_close(bank[1], _solo(split, masks[1], 2, recipe, bn_model))


def test_bad_masks():
    split = _data(10)
    ctx = RunContext(device=CPU, seed=0, recipe=Recipe(), show_progress=False)
    with pytest.raises(ValueError, match="masks must be"):
        train_bank(_mlp, split, torch.ones(2, 9, dtype=torch.bool), Recipe(), ctx)
    with pytest.raises(ValueError, match="at least one"):
        train_bank(_mlp, split, torch.zeros(1, 10, dtype=torch.bool), Recipe(), ctx)


@pytest.mark.slow
def test_bank_is_faster_than_one_after_another():
    """16 small MLPs on random halves of 4,000 examples: vmapped vs sequential (CPU)."""
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randn(4000, 1, 8, 8, generator=g), torch.randint(0, 10, (4000,), generator=g))
    masks = random_halves(4000, 16, g)
    recipe = Recipe(epochs=2, batch_size=128)
    ctx = RunContext(device=CPU, seed=0, recipe=recipe, show_progress=False)

    def factory():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    t0 = time.perf_counter()
    train_bank(factory, split, masks, recipe, ctx)
    banked = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(16):
        _solo(split, masks[k], k, recipe, factory)
    alone = time.perf_counter() - t0
    assert alone / banked > 1.5, f"bank {banked:.2f}s vs sequential {alone:.2f}s"
