"""scripts/compat.py's pure helpers: the venv's requirements, the API probe, the summary, the state check.

The tier itself (searches, a kill -9, a two-node job) runs as `scripts/compat.sh --here` in CI after the tests.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys

import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("compat", REPO / "scripts" / "compat.py")
compat = importlib.util.module_from_spec(spec)
sys.modules["compat"] = compat  # dataclasses look their module up by name
spec.loader.exec_module(compat)


def test_requirements_replace_ray_and_hyperopt_and_keep_the_rest() -> None:
    pyproject = {"project": {"dependencies": ["ray[default,tune]>=2.60,<2.61", "tensorflow>=2.21,<2.22",
                                              "hyperopt==0.3.0", "Ray-Extra>=1"]}}  # fmt: skip
    assert compat.requirements(pyproject, "2.52.1", None) == [
        "ray[default,tune]==2.52.1", "tensorflow>=2.21,<2.22", "hyperopt==0.3.0", "Ray-Extra>=1"
    ]  # fmt: skip
    assert compat.requirements(pyproject, "2.44.1", "0.2.7")[2] == "hyperopt==0.2.7"


def test_the_requirements_of_this_pyproject_name_ray_once() -> None:
    import tomllib

    reqs = compat.requirements(tomllib.loads((REPO / "pyproject.toml").read_text()), "2.52.1", None)
    assert [r for r in reqs if r.lower().startswith("ray")] == ["ray[default,tune]==2.52.1"]


def test_api_differences_name_what_is_missing_and_the_keywords_refused() -> None:
    public = {
        "json.JSONDecoder": ["strict", "no_such_keyword"],
        "json.dumps": ["no_such_keyword"],
        "json.no_such_function": [],
        "os.path.join": [],
    }
    private = ["json.decoder.JSONDecoder.decode", "json._no_such_private"]
    assert compat.api_differences(public, private) == [
        "json.JSONDecoder: no no_such_keyword",  # json.dumps takes **kw: any keyword
        "missing json.no_such_function (AttributeError)",
        "missing private json._no_such_private",
    ]


def test_summary_lists_each_step_and_fails_on_any_failed_or_skipped() -> None:
    steps = [compat.Step("smoke", 12.34, "PASS", "2 trials trained\nmore"), compat.Step("analysis", 0, "SKIP", "x"),
             compat.Step("budget", 50.0, "FAIL", "ended by None")]  # fmt: skip
    lines = compat.summary(steps, "compat ray 2.52.1").splitlines()
    assert lines[0] == "compat ray 2.52.1"
    assert lines[2].split() == ["smoke", "12.3", "PASS", "2", "trials", "trained"]
    assert lines[-1].split() == ["total", "62.3", "FAIL", "(analysis,", "budget)"]
    assert compat.summary(steps[:1], "t").splitlines()[-1].split() == ["total", "12.3", "PASS"]


def test_state_whole_needs_both_newest_state_files_whole(tmp_path) -> None:
    assert not compat.state_whole(tmp_path)
    (tmp_path / "experiment_state-2026-12-06_07-00-00.json").write_text(json.dumps({"trial_data": []}))
    assert not compat.state_whole(tmp_path)  # no searcher state yet
    searcher = tmp_path / "searcher-state-2026-12-06_07-00-00.pkl"
    searcher.write_bytes(pickle.dumps({"a": 1}))
    assert compat.state_whole(tmp_path)
    searcher.write_bytes(pickle.dumps({"a": 1})[:-1])  # being written: Tune copies in place
    assert not compat.state_whole(tmp_path)
    searcher.write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "experiment_state-2026-12-06_07-00-09.json").write_text('{"trial_data": [')  # the newer one, torn
    assert not compat.state_whole(tmp_path)


@pytest.mark.parametrize(("argv", "message"), [([], "give a Ray release"), (["2.52.1", "--here"], "not both")])
def test_a_release_or_here_is_asked_for(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        compat.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
