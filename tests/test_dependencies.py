"""Every third-party package that unlearnbench/ imports is declared in pyproject.toml."""

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
# Import names that differ from the distribution that provides them.
DISTRIBUTION = {"yaml": "pyyaml", "sklearn": "scikit-learn", "hydra": "hydra-core", "PIL": "pillow",
                "hydra_plugins": "hydra-core", "google": "protobuf", "torch_tb_profiler": "torch-tb-profiler",
                "mlflow": "mlflow-skinny"}  # the mlflow extra declares the skinny client


def normalized(name: str) -> str:
    """PEP 503 normalisation: case-insensitive, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(package: Path) -> dict:
    """Top-level module -> the files that import it, for every absolute import in package."""
    found: dict = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(package)))
    return found


def declared() -> set:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {normalized(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}


def test_every_imported_third_party_package_is_declared():
    third_party = {m: files for m, files in imported_modules(ROOT / "unlearnbench").items()
                   if m not in sys.stdlib_module_names and m != "unlearnbench"}
    assert {"yaml", "scipy", "torch"} <= set(third_party)  # the walk sees the imports at all
    missing = {m: sorted(files)[:3] for m, files in third_party.items()
               if normalized(DISTRIBUTION.get(m, m)) not in declared()}
    assert not missing, f"imported but not in pyproject.toml's dependencies or extras: {missing}"


def test_the_walk_finds_nested_and_from_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "m.py").write_text("def f():\n    import yaml.constructor\nfrom sklearn import svm\n"
                                      "from . import sibling\n")
    assert imported_modules(pkg) == {"yaml": {"sub/m.py"}, "sklearn": {"sub/m.py"}}
