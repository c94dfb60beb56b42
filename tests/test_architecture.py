"""The arrows docs/architecture.md says must never exist, checked on the real imports of every module.

Imports are read from the source (every ``import`` statement, function-local ones included) and
followed through our own modules, so an arrow that goes the long way round is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tune_mlp", "analysis")

# The math and the data: TensorFlow and numpy only; no Ray, no W&B, no plotting.
MATH = ("tune_mlp.model", "tune_mlp.optimizers", "tune_mlp.trainer", "tune_mlp.evaluate", "tune_mlp.checkpoint")
FOUNDATIONS = ("tune_mlp.config", "tune_mlp.errors", "tune_mlp.cli", "tune_mlp.storage", "tune_mlp.records")
DATA = ("tune_mlp.data", "tune_mlp.data.idx", "tune_mlp.data.locate", "tune_mlp.data.splits")
TRAINING_INTERNALS = (
    "tune_mlp.trainer", "tune_mlp.optimizers", "tune_mlp.training", "tune_mlp.trainable", "tune_mlp.tuning",
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[0] == "search_spaces":
        parts = ("tune_mlp", *parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def direct_imports(path: Path) -> set[str]:
    """Every module named by an import statement in the file (``from a import b`` counts a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    return {module_name(path): direct_imports(path) for path in files}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules imported by ``start``, directly or through our own modules (external ones are leaves)."""
    seen, todo = set(), [start]
    while todo:
        for name in graph.get(todo.pop(), set()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def external_roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_the_graph_covers_every_module(graph) -> None:
    assert {"tune_mlp.tuning", "tune_mlp.data.locate", "analysis.analyze", "tune_mlp.study.compare_losses"} <= set(
        graph
    )


def test_nothing_in_tune_mlp_but_the_study_imports_analysis(graph) -> None:
    offenders = {
        module: sorted(name for name in reachable(graph, module) if name.split(".")[0] == "analysis")
        for module in graph
        if module.startswith("tune_mlp") and not module.startswith("tune_mlp.study")
    }
    assert {module: names for module, names in offenders.items() if names} == {}


@pytest.mark.parametrize("module", MATH + FOUNDATIONS + DATA)
def test_the_math_and_data_import_no_ray_wandb_or_plotting(graph, module) -> None:
    assert external_roots(reachable(graph, module)).isdisjoint({"ray", "wandb", "hyperopt", "matplotlib", "seaborn"})


# A checkpoint is read (a CLI checking its input) before TensorFlow loads.
@pytest.mark.parametrize("module", FOUNDATIONS + DATA + ("tune_mlp.network", "tune_mlp.checkpoint"))
def test_config_and_data_stay_cheap_no_tensorflow(graph, module) -> None:
    assert "tensorflow" not in external_roots(reachable(graph, module))


def test_analysis_reads_it_does_not_train(graph) -> None:
    analysis = [module for module in graph if module.split(".")[0] == "analysis"]
    assert len(analysis) >= 4
    assert {module: sorted(reachable(graph, module) & set(TRAINING_INTERNALS)) for module in analysis} == {
        module: [] for module in analysis
    }


def test_no_module_imports_itself_back(graph) -> None:
    cycles = [module for module in graph if module in reachable(graph, module) and module.count(".") > 0]
    assert cycles == []
