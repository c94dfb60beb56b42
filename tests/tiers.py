"""Test tiers: each test is marked by what its code reaches, so a new test lands in the right tier unedited.

`make test-fast` runs ``-m "not ray and not subprocess and not slow"``: in-process TensorFlow on
small data, no Ray, no child process, no network. `make test` runs everything. The markers:

- ``ray``: starts Ray in this process (``ray.init``, ``run_search``, a ``Tuner``) or a Ray cluster;
- ``subprocess``: runs a child process (a CLI as users run it: it may import TensorFlow, start Ray, use pip);
- ``cluster``: starts a multi-node Ray cluster (``tests/ray_cluster.py``, a ``test_cluster*.py`` module, or a test
  under ``tests/cluster/``);
- ``slow``: trains for a while in this process (the full data set, whole runs trained twice), marked by hand.

The rule reads the source of the test function, of every fixture it uses (transitively), and of every
function or class of ``tests/`` they call by name (``search_cli``, ``run_module``, a module's own helper),
following those calls. A test that still starts Ray or a Python child process without its marker fails at
once with the reason (`tier_guard`), instead of quietly making the fast tier slow.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
RULES = {  # marker: what in the reached source gives it
    "cluster": re.compile(r"\b\w*node_cluster\(|\bCluster\("),  # tests/ray_cluster.py
    "ray": re.compile(r"\bray\.init\(|\brun_search\(|\bTuner\(|\b\w*node_cluster\(|\bCluster\("),
    "subprocess": re.compile(r"\bsubprocess\.|\bPopen\(|\bos\.system\(|\bos\.exec|\bmultiprocessing\b"),
}


def _is_ours(obj: object) -> bool:
    """A function or class of tests/ (this module's guard aside)."""
    try:
        path = Path(inspect.getsourcefile(obj) or "").resolve()
    except TypeError:  # built-in
        return False
    return path.is_relative_to(TESTS) and path != Path(__file__).resolve()


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, comprehensions, lambdas
            yield from _names(const)


def _reached_source(obj: object, seen: set[int]) -> Iterator[str]:
    """The source of a test-side function or class and of every test-side function or class it names."""
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if id(obj) in seen or not _is_ours(obj):
        return
    seen.add(id(obj))
    if inspect.isclass(obj):
        for member in vars(obj).values():
            if inspect.isfunction(member):
                yield from _reached_source(member, seen)
        return
    if not inspect.isfunction(obj):
        return
    yield inspect.getsource(obj)
    for name in _names(obj.__code__):
        target = obj.__globals__.get(name)
        if inspect.isfunction(target) or inspect.isclass(target):
            yield from _reached_source(target, seen)


def tier_markers(item: pytest.Item) -> set[str]:
    """The markers `RULES` give a test (see the module's docstring)."""
    seen: set[int] = set()
    sources = list(_reached_source(getattr(item, "function", None), seen))
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):
            sources += _reached_source(fixturedef.func, seen)
    text = "\n".join(sources)
    markers = {marker for marker, rule in RULES.items() if rule.search(text)}
    path = Path(str(item.path))
    if TESTS / "cluster" in path.parents or path.name.startswith("test_cluster"):
        markers |= {"cluster", "ray"}
    return markers


def mark_tiers(items: list[pytest.Item]) -> None:
    """Add to each test the markers `tier_markers` gives it (conftest's collection hook calls this)."""
    for item in items:
        present = {mark.name for mark in item.iter_markers()}
        wanted = tier_markers(item) | present
        if "cluster" in wanted:
            wanted.add("ray")
        for marker in sorted(wanted - present):
            item.add_marker(marker)


def _refuse(reason: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{reason}; tests/tiers.py's rule missed it: mark the test, or name the call in its code")

    return refuse


def _runs_python(args: object) -> bool:
    """Whether a Popen command runs a Python interpreter or one of our scripts (may import TensorFlow, start Ray)."""
    argv = [args] if isinstance(args, (str, bytes, Path)) else list(args or [])
    first = str(argv[0]) if argv else ""
    return "python" in Path(first).name or first == sys.executable or "ray" == Path(first).name or first.endswith(".sh")


@pytest.fixture(autouse=True)
def tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test without ``ray`` may not start Ray; one without ``subprocess`` may not start a Python child."""
    markers = {mark.name for mark in request.node.iter_markers()}
    # A module- or session-scoped fixture of an earlier test may hold Ray across this one: only a Ray that
    # this test started is its fault.
    ray_before = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    if "subprocess" not in markers and "ray" not in markers:  # a local Ray starts its own Python processes
        popen_init = subprocess.Popen.__init__

        def guarded(self, args, *rest, **kwargs):
            if _runs_python(args):
                starts = "starts Ray" if "/ray/" in str(args) else "runs a Python child process"
                _refuse(f"this test is not marked 'subprocess' but {starts}: {args!r}")()
            popen_init(self, args, *rest, **kwargs)

        monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    if "ray" not in markers and "ray" in sys.modules:
        monkeypatch.setattr(sys.modules["ray"], "init", _refuse("this test is not marked 'ray' but starts Ray"))
    yield
    if "ray" not in markers and not ray_before and "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()
        pytest.fail("this test is not marked 'ray' but started Ray; tests/tiers.py's rule missed it: mark the test")
