"""Per-method paper recipes: every preset × every method composes to the right method block.

A preset names its table (``table: del``); ``conf/recipe/<table>/<method>.yaml`` then pins
that paper's recipe for the chosen method only, and command-line ``method.*`` still wins.
"""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from unlearnbench.config import config_dir, register_resolvers
from unlearnbench.registry import METHODS

CONF = Path(config_dir())
PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
METHOD_NAMES = sorted(p.stem for p in (CONF / "method").glob("*.yaml") if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def composer():
    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        yield lambda *overrides: compose("config", overrides=list(overrides))


def recipe_file(table, method):
    return CONF / "recipe" / str(table) / f"{method}.yaml"


@pytest.fixture(scope="module")
def plain(composer):
    """Each method's block with no preset (its own defaults), composed once."""
    return {m: OmegaConf.to_container(composer(f"method={m}").method, resolve=True) for m in METHOD_NAMES}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_method_under_every_preset(composer, plain, preset):
    for method in METHOD_NAMES:
        cfg = composer(f"experiment={preset}", f"method={method}")
        block = OmegaConf.to_container(cfg.method, resolve=True)
        assert block["name"] == method
        METHODS.validate(block, "method")  # keys are the constructor's
        if method != "checkpoint":  # (needs a state-dict file)
            METHODS.build(block, "method")  # values pass the constructor's checks
        table = cfg.table.name if cfg.get("table") else None
        recipe = recipe_file(table, method)
        expected = dict(plain[method])
        if table is not None and recipe.exists():
            pinned = OmegaConf.to_container(OmegaConf.load(recipe))
            expected.update(pinned)
        # The preset itself never writes into the method block: only the recipe file does.
        assert block == expected, f"{preset} × {method}"


def test_every_recipe_file_is_a_method_of_a_table():
    tables = {p.stem for p in (CONF / "table").glob("*.yaml")}
    for path in (CONF / "recipe").glob("*/*.yaml"):
        assert path.parent.name in tables, path
        assert path.stem in METHOD_NAMES, path
        pinned = OmegaConf.to_container(OmegaConf.load(path))
        unknown = set(pinned) - set(METHODS.keys_of(path.stem, ()))
        assert not unknown, f"{path}: {unknown}"


def test_command_line_overrides_win_over_the_recipe(composer):
    cfg = composer("experiment=del_cifar10_noniid", "method=random_label",
                   "method.final_lr_fraction=0.2", "method.lr=0.5")
    assert cfg.method.final_lr_fraction == 0.2 and cfg.method.lr == 0.5
    assert cfg.method.labels == "any"  # the rest of DEL's recipe stays


def test_recipes_apply_only_to_their_table(composer, plain):
    assert composer("method=scrub").method.max_grad_norm is None       # default: off
    assert composer("table=fashion", "method=scrub").method.max_grad_norm == 1.0
    nabla = composer("experiment=nabla_tau_cifar10_15", "method=scrub").method
    assert (nabla.alpha, nabla.gamma, nabla.max_steps, nabla.min_steps) == (0.5, 1.0, 3, 6)
    assert list(nabla.lr_decay_epochs) == [3, 5, 9]
    assert composer("experiment=del_cifar10_iid", "method=del").method.lr == 0.015
    assert composer("experiment=zuo_cifar10_topk", "method=del").method.lr == plain["del"]["lr"]
