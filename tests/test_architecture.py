"""The arrows docs/architecture.md says must never exist, checked on the real imports of every module, by folder.

Imports are read from the source (every ``import`` statement, function-local ones included) and
followed through our own modules, so an arrow that goes the long way round is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tune_mlp", "analysis")

# The layers, each a set of folders (top-level modules of tune_mlp are the foundations or the commands).
FOUNDATION_MODULES = {"config", "errors", "cli", "storage", "records", "wandb_mode", "mnist_wheel", "search_spaces"}
# python -m tune_mlp.<command>
COMMAND_MODULES = {"train", "export", "predict", "search.cli", "search.__main__", "cluster.driver"}
# What each layer may import of ours: only layers listed before it in docs/architecture.md, and itself.
MAY_IMPORT = {
    "foundations": {"foundations"},
    "mlp": {"foundations", "mlp"},
    "search": {"foundations", "mlp", "search"},
    "cluster": {"foundations", "search", "cluster"},
    "deploy": {"foundations", "mlp", "search", "deploy"},
    "replay": {"foundations", "mlp", "search", "replay"},
    "commands": {"foundations", "mlp", "search", "cluster", "deploy", "commands"},
    "analysis": {"foundations", "mlp", "search", "deploy", "analysis"},
    "study": {"foundations", "mlp", "search", "deploy", "analysis", "study"},
}
# Third-party roots a layer must never reach, through any of ours.
NEVER_REACHES = {
    # keras: the data look-up's last resort downloads through it, imported lazily (tune_mlp.data.locate)
    "foundations": {"tensorflow", "ray", "wandb", "hyperopt", "matplotlib", "seaborn", "sklearn"},
    "mlp": {"ray", "hyperopt", "matplotlib", "seaborn", "sklearn"},  # wandb: run_training logs to it, imported lazily
}
# Read before TensorFlow loads: a CLI checks its input, --help and flag errors are instant, analysis reads results.
NO_TENSORFLOW = (
    "tune_mlp.mlp.network", "tune_mlp.mlp.checkpoint", "tune_mlp.search.plan", "tune_mlp.search.space",
    "tune_mlp.search.tune_space", "analysis.accounting", "tune_mlp.search.results", "tune_mlp.search.lock",
)  # fmt: skip
TRAINING_INTERNALS = (
    "tune_mlp.mlp.trainer", "tune_mlp.mlp.optimizers", "tune_mlp.mlp.training", "tune_mlp.search.trainable",
    "tune_mlp.search.tuner",
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str | None:
    """The layer a module of ours belongs to, by its folder; None for a module that is not ours."""
    parts = module.split(".")
    if parts[0] == "analysis":
        return "analysis"
    if parts[0] != "tune_mlp":
        return None
    if len(parts) == 1 or parts[1] in FOUNDATION_MODULES or parts[1] == "data":
        return "foundations"
    if parts[1] in COMMAND_MODULES or ".".join(parts[1:3]) in COMMAND_MODULES:
        return "commands"
    return parts[1]


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


def test_every_module_has_a_known_layer(graph) -> None:
    assert {module: layer(module) for module in graph if layer(module) not in MAY_IMPORT} == {}
    assert {layer(module) for module in graph} == set(MAY_IMPORT)


def test_every_layer_imports_only_the_layers_before_it(graph) -> None:
    wrong = {
        module: sorted(name for name in names if name in graph and layer(name) not in MAY_IMPORT[layer(module)])
        for module, names in graph.items()
    }
    assert {module: names for module, names in wrong.items() if names} == {}


@pytest.mark.parametrize("kind", sorted(NEVER_REACHES))
def test_lower_layers_reach_no_heavy_library(graph, kind) -> None:
    modules = [module for module in graph if layer(module) == kind]
    assert len(modules) >= 5
    reached = {module: sorted(external_roots(reachable(graph, module)) & NEVER_REACHES[kind]) for module in modules}
    assert {module: roots for module, roots in reached.items() if roots and module != "tune_mlp.mlp.training"} == {}
    assert external_roots(reachable(graph, "tune_mlp.mlp.training")) & NEVER_REACHES["mlp"] == set()


@pytest.mark.parametrize("module", NO_TENSORFLOW)
def test_what_is_read_before_training_needs_no_tensorflow(graph, module) -> None:
    assert module in graph
    assert external_roots(reachable(graph, module)).isdisjoint({"tensorflow", "keras"})


def test_analysis_reads_it_does_not_train(graph) -> None:
    analysis = [module for module in graph if layer(module) == "analysis"]
    assert len(analysis) >= 4
    assert {module: sorted(reachable(graph, module) & set(TRAINING_INTERNALS)) for module in analysis} == {
        module: [] for module in analysis
    }


def test_no_module_imports_itself_back(graph) -> None:
    cycles = [module for module in graph if module in reachable(graph, module) and module.count(".") > 0]
    assert cycles == []
