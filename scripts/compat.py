"""Does this checkout work on a given Ray release? The search's tier, run as a user would, step by step.

    scripts/compat.sh 2.52.1                     # a fresh venv with ray[default,tune]==2.52.1, then the tier
    scripts/compat.sh 2.52.1 --hyperopt 0.2.7    # and that HyperOpt
    python scripts/compat.py --here              # the tier in this interpreter (CI, after the tests)

A release: a fresh ``python3.11 -m venv`` under build/compat/ (``--venv`` to choose), the dependencies that
pyproject.toml declares with its Ray (and, if given, HyperOpt) requirement replaced by the asked release, then
``pip install --no-deps .`` (a wheel of this checkout, not editable). The tier then runs in that venv from a
folder outside the checkout, so every command imports the installed package:

    smoke      python -m tune_mlp.search --smoke-test --no_wandb       2 trials trained, best.json
    analysis   python -m analysis on it                                summary.json's test accuracy
    export     python -m tune_mlp.export on it                         model.keras + export.json
    resume     a stand-in search, kill -9 of its process group mid-run, then --resume: all 4 trials
    extend     --samples 6 on that finished search                     part-2 with 2 more trials
    budget     a stand-in search under --time-budget                   ended by the budget
    cluster    ray start --head + a second node (127.0.0.1), the search submitted as a Ray job
               (--address http://HEAD:PORT, the route of scripts/submit.sh): SUCCEEDED, trials on both nodes

Each step is checked by what it writes and prints, not by its exit status alone. A summary ends the run (step,
seconds, PASS/FAIL); the exit status is 1 if any step failed. The stand-in trainable (no TensorFlow) runs every
step that is about Ray's machinery; only smoke, analysis and export train or load a model.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist, as the tests use it
COMMAND_TIMEOUT_S = 600  # one command of the tier; a search here takes well under a minute on 2 busy cores
# A search space of one tiny network: the stand-in steps only need trials, not a realistic space.
TINY_SPACE = """\
parameters:
  num_layers: {value: 1}
  hidden_size: {values: [16, 32]}
  batch_size: {value: 256}
  learning_rate: {distribution: log_uniform_values, min: 0.001, max: 0.01}
"""
RESUME_TRIALS, EXTEND_TRIALS = 4, 6
BUDGET = "40s"  # long enough for a trial to report under load, short enough for CI's ~3 minutes
# Trials of 2 x 4 s: the second trial's worker starts while the first still holds its node's one CPU, so the
# two trials land on the two nodes (with 1 s epochs one idle worker could run both, reused by Tune).
CLUSTER_EPOCH_S = "4"


class StepFailed(Exception):
    """A step's output or files are not what the tier expects; the message says what was seen."""


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    result: str = "SKIP"  # PASS | FAIL | SKIP (a step it needs failed)
    detail: str = ""


@dataclass
class Tier:
    work: Path  # results, logs, the space file; outside the checkout
    installed: bool = False  # import the installed tune_mlp (a venv's wheel), not this checkout's
    python: str = sys.executable
    steps: list[Step] = field(default_factory=list)

    @property
    def results(self) -> Path:
        return self.work / "results"

    def env(self, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
        # A user's RAY_ADDRESS would send the local searches to their cluster; W&B stays off and offline.
        env = {k: v for k, v in (base or os.environ).items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
        env.pop("TUNE_MLP_DATA_DIR", None)
        if not self.installed:  # the commands run from the work folder: put this checkout's code first
            env["PYTHONPATH"] = str(REPO)
        return env | {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "TF_CPP_MIN_LOG_LEVEL": "2",
                      "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"} | extra  # fmt: skip

    def run(self, log: str, *args: str, env: dict[str, str] | None = None) -> str:
        """``python ARGS`` from the work folder (so the installed tune_mlp is imported); its output, logged."""
        path = self.work / "logs" / f"{log}.log"
        done = subprocess.run([self.python, *args], cwd=self.work, env=env or self.env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT_S)  # fmt: skip
        path.write_text(done.stdout)
        if done.returncode != 0:
            last = tail(done.stdout, 1)  # mostly the exception: the summary's line shows it
            raise StepFailed(
                f"`{' '.join(args[:3])} ...` exit {done.returncode}: {last} (log {path})\n{tail(done.stdout)}"
            )
        return done.stdout

    def search(self, log: str, *flags: str, env: dict[str, str] | None = None) -> str:
        return self.run(log, "-m", "tune_mlp.search", "--no_wandb", "--storage-path", str(self.results), *flags,
                        env=env)  # fmt: skip


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise StepFailed(f"{path} was not written")
    return json.loads(path.read_text())


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def check_best(experiment: Path, trials: int | None, output: str) -> dict:
    """best.json counts the trials (all of them when ``trials`` is given) with none errored; the CLI said so."""
    best = read_json(experiment / "best.json")
    expect(best["errored_trials"] == 0, f"{best['errored_trials']} errored trials: {best}")
    if trials is not None:
        expect(best["trials"] == trials, f"best.json counts {best['trials']} trials, expected {trials}")
    said = f"{best['trials']} trials ran, 0 errored"
    expect(said in output, f"the search did not print {said!r}:\n{tail(output)}")
    return best


def state_whole(experiment: Path) -> bool:
    """Tune's newest experiment state (JSON) and searcher state (a pickle) are there and whole: a driver killed now
    can be resumed. Tune writes them in place, so each exists a moment before it is whole."""
    for pattern, whole in (("experiment_state-*.json", _json_whole), ("searcher-state-*.pkl", _pickle_whole)):
        newest = max(experiment.glob(pattern), default=None, key=lambda p: p.name)
        if newest is None or not whole(newest.read_bytes()):
            return False
    return True


def _json_whole(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def _pickle_whole(data: bytes) -> bool:
    return data.endswith(pickle.STOP)


def reported_epochs(experiment: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in experiment.glob("trial_*/result.json"))


# The public Ray APIs the product calls, with the keyword arguments it passes (what a release must accept), and the
# private names it still reaches (issue 25: being removed; each must be gated by the release it was verified on).
PUBLIC_APIS = {
    "ray.tune.report": ["metrics", "checkpoint"],
    "ray.tune.get_checkpoint": [],
    "ray.tune.Checkpoint.from_directory": ["path"],
    "ray.tune.Tuner": ["trainable", "param_space", "tune_config", "run_config"],
    "ray.tune.Tuner.restore": ["path", "trainable", "resume_errored", "storage_filesystem"],
    "ray.tune.Tuner.can_restore": ["path", "storage_filesystem"],
    "ray.tune.TuneConfig": ["metric", "mode", "search_alg", "max_concurrent_trials", "scheduler", "num_samples",
                            "time_budget_s", "reuse_actors", "trial_dirname_creator"],
    "ray.tune.RunConfig": ["name", "storage_path", "storage_filesystem", "stop", "checkpoint_config",
                           "failure_config", "callbacks", "progress_reporter", "verbose"],
    "ray.tune.CheckpointConfig": ["num_to_keep", "checkpoint_score_attribute", "checkpoint_score_order"],
    "ray.tune.FailureConfig": ["max_failures"],
    "ray.tune.ExperimentAnalysis": ["experiment_checkpoint_path", "default_metric", "default_mode",
                                    "storage_filesystem"],
    "ray.tune.ResultGrid": ["experiment_analysis"],
    "ray.tune.with_parameters": ["trainable"],
    "ray.tune.with_resources": ["trainable", "resources"],
    "ray.tune.PlacementGroupFactory": ["bundles", "strategy"],
    "ray.tune.CLIReporter": ["parameter_columns", "metric_columns", "max_report_frequency", "sort_by_metric",
                             "max_progress_rows"],
    "ray.tune.Callback": [],
    "ray.tune.Stopper": [],
    "ray.tune.search.Searcher.save_to_dir": ["checkpoint_dir"],
    "ray.tune.search.Searcher.restore_from_dir": ["checkpoint_dir"],
    "ray.tune.search.ConcurrencyLimiter": ["searcher", "max_concurrent"],
    "ray.tune.search.hyperopt.HyperOptSearch": ["space", "metric", "mode", "points_to_evaluate", "n_initial_points",
                                                "random_state_seed", "gamma"],
    "ray.tune.schedulers.ASHAScheduler": ["time_attr", "metric", "mode", "max_t", "grace_period", "reduction_factor"],
    "ray.tune.logger.CSVLoggerCallback": [],
    "ray.tune.logger.JsonLoggerCallback": [],
    "ray.tune.logger.TBXLoggerCallback": [],
    "ray.air.integrations.wandb.WandbLoggerCallback": ["project", "group", "excludes"],
    "ray.air.constants.EXPR_RESULT_FILE": [],
    "ray.job_submission.JobSubmissionClient": ["address", "headers"],
}  # fmt: skip
PRIVATE_NAMES = [  # what tune_mlp.search.compat reaches (each gated; reported, never failed) and what it spells itself
    "ray.tune.execution.tune_controller.TuneController._maybe_reuse_cached_actor",
    "ray.tune.search.search_generator.SearchGenerator.CKPT_FILE_TMPL",
    "ray.tune.search.Searcher.CKPT_FILE_TMPL",
]


def resolve(dotted: str) -> object:
    """The object a dotted name names: the longest importable module, then attributes."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def api_differences(public: dict[str, list[str]], private: Sequence[str]) -> list[str]:
    """What of ``public`` is missing or refuses a keyword we pass, and which ``private`` names are missing."""
    import inspect

    found = []
    for dotted, keywords in public.items():
        try:
            target = resolve(dotted)
        except (ImportError, AttributeError) as error:
            found.append(f"missing {dotted} ({type(error).__name__})")
            continue
        if not keywords:
            continue
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        if missing := [k for k in keywords if k not in params]:
            found.append(f"{dotted}: no {', '.join(missing)}")
    for dotted in private:
        try:
            resolve(dotted)
        except (ImportError, AttributeError):
            found.append(f"missing private {dotted}")
    return found


def pending_behind_limiter(limit: int = 7) -> int | str:
    """How many trials Tune keeps pending behind a searcher limited to ``limit`` at once (2.60: the limit; 2.52: 1).

    Probed through Tune's private ``_get_max_pending_trials`` (compat only reads it; the product does not).
    """
    try:
        from ray.tune.execution.tune_controller import _get_max_pending_trials
        from ray.tune.search import ConcurrencyLimiter, SearchGenerator
        from ray.tune.search.hyperopt import HyperOptSearch

        return _get_max_pending_trials(SearchGenerator(ConcurrencyLimiter(HyperOptSearch(), max_concurrent=limit)))
    except Exception as error:  # a release without it: say so in the step's line
        return f"unknown ({type(error).__name__}: {error})"


# ---- the steps ---------------------------------------------------------------------------------------------------


def step_versions(tier: Tier, expect_ray: str | None, expect_hyperopt: str | None) -> str:
    code = ("import json, ray, hyperopt, numpy, tensorflow, wandb, tune_mlp; print(json.dumps({'ray': ray.__version__, "
            "'hyperopt': hyperopt.__version__, 'numpy': numpy.__version__, 'tensorflow': tensorflow.__version__, "
            "'wandb': wandb.__version__, 'tune_mlp': tune_mlp.__file__}))")  # fmt: skip
    found = json.loads(tier.run("versions", "-c", code).strip().splitlines()[-1])
    expect(expect_ray is None or found["ray"] == expect_ray, f"ray {found['ray']} installed, {expect_ray} asked")
    expect(expect_hyperopt is None or found["hyperopt"] == expect_hyperopt,
           f"hyperopt {found['hyperopt']} installed, {expect_hyperopt} asked")  # fmt: skip
    where = Path(found["tune_mlp"]).resolve()
    if tier.installed:
        expect("site-packages" in where.parts, f"tune_mlp is imported from {where}, not from the venv's site-packages")
    else:
        expect(where == REPO / "tune_mlp" / "__init__.py", f"tune_mlp is imported from {where}, not {REPO}")
    return " ".join(f"{k} {v}" for k, v in found.items())


def step_apis(tier: Tier) -> str:
    """Ray's public APIs the product calls, probed in the tier's interpreter; any difference fails the step."""
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'scripts')!r}); import compat; "
            "print(json.dumps([compat.pending_behind_limiter(), "
            "compat.api_differences(compat.PUBLIC_APIS, compat.PRIVATE_NAMES)]))")  # fmt: skip
    pending, differences = json.loads(tier.run("apis", "-c", code).strip().splitlines()[-1])
    public = [d for d in differences if "private" not in d]
    private = [d for d in differences if "private" in d]
    expect(not public, "; ".join(public + private))
    return f"{len(PUBLIC_APIS)} public APIs as called; pending behind a limit of 7: {pending}; " + (
        "; ".join(private) or f"{len(PRIVATE_NAMES)} private names there"
    )


def step_smoke(tier: Tier) -> str:
    out = tier.search("smoke", "--smoke-test", "--name", "smoke")
    best = check_best(tier.results / "smoke", 2, out)["best"]
    expect(Path(tier.results / "smoke" / best["checkpoint"]).exists() or Path(best["checkpoint"]).exists(),
           f"the best checkpoint {best['checkpoint']} does not exist")  # fmt: skip
    return f"2 trials trained; best {best['metric']} {best['score']:.4f}"


def step_analysis(tier: Tier) -> str:
    out = tier.work / "report"
    tier.run("analysis", "-m", "analysis", str(tier.results / "smoke"), "--out", str(out))
    accuracy = read_json(out / "summary.json")["best"]["test_accuracy"]
    expect(0.1 < accuracy <= 1.0, f"test accuracy {accuracy}: not better than chance")
    expect(f"test accuracy {accuracy:.4f}" in (out / "report.md").read_text(), "report.md lacks the test accuracy")
    return f"test accuracy {accuracy:.4f}; {len(list(out.glob('*.png')))} figures"


def step_export(tier: Tier) -> str:
    out = tier.work / "exported"
    tier.run("export", "-m", "tune_mlp.export", str(tier.results / "smoke"), "--out", str(out))
    read_json(out / "export.json")
    expect((out / "model.keras").stat().st_size > 0 if (out / "model.keras").exists() else False,
           f"{out / 'model.keras'} was not written")  # fmt: skip
    return ", ".join(sorted(p.name for p in out.iterdir()))


def resume_flags(space: Path, samples: int) -> tuple[str, ...]:
    return ("--space", str(space), "--stand-in", "1", "--samples", str(samples), "--max-epochs", "3",
            "--grace-period", "3", "--initial-points", "2", "--concurrency", "2", "--name", "resume")  # fmt: skip


def step_resume(tier: Tier) -> str:
    """kill -9 of the driver and the local Ray it started, once epochs are reported and Tune's state is whole."""
    experiment = tier.results / "resume"
    flags = resume_flags(tier.work / "space.yaml", RESUME_TRIALS)
    log = tier.work / "logs" / "resume-killed.log"
    with log.open("w") as out:
        command = [tier.python, "-m", "tune_mlp.search", "--no_wandb", "--storage-path", str(tier.results), *flags]
        driver = subprocess.Popen(command, cwd=tier.work, env=tier.env(), stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while not (reported_epochs(experiment) >= 2 and state_whole(experiment)):
        if driver.poll() is not None or time.monotonic() > deadline:
            kill_group(driver)
            raise StepFailed(f"the search ended or stalled before the kill (exit {driver.poll()}):\n"
                             f"{tail(log.read_text())}")  # fmt: skip
        time.sleep(0.2)
    epochs = reported_epochs(experiment)
    kill_group(driver)
    expect(not (experiment / "best.json").exists(), "best.json exists: the search ended before the kill")
    out = tier.search("resume", *flags, "--resume")
    expect(f"resuming experiment {experiment}" in out, f"no 'resuming experiment {experiment}' line:\n{tail(out)}")
    check_best(experiment, RESUME_TRIALS, out)
    runs = read_json(experiment / "search.json")["parts"][0]["runs"]
    expect(len(runs) == 2, f"search.json records {len(runs)} driver runs, expected 2 (killed, resumed)")
    return f"killed after {epochs} epochs; resumed to {RESUME_TRIALS} trials"


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process's session (the driver and the local Ray it started) and every descendant still alive."""
    family = _descendants(process.pid)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=60)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])  # after "pid (comm) "
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def step_extend(tier: Tier) -> str:
    experiment = tier.results / "resume"
    out = tier.search("extend", *resume_flags(tier.work / "space.yaml", EXTEND_TRIALS))
    best = check_best(experiment, EXTEND_TRIALS, out)
    parts = read_json(experiment / "search.json")["parts"]
    expect([p["folder"] for p in parts] == [".", "part-2"], f"parts {[p['folder'] for p in parts]}")
    added = len(list((experiment / "part-2").glob("trial_*")))
    expect(added == EXTEND_TRIALS - RESUME_TRIALS, f"part-2 holds {added} trials")
    expect(best["parts"] == 2, f"best.json counts {best['parts']} parts")
    return f"{added} more trials in part-2, {best['trials']} in all"


def step_budget(tier: Tier) -> str:
    # Ray's workers run at nice 15: on a busy machine they could starve until the budget ends (tests/conftest.py).
    out = tier.search("budget", "--space", str(tier.work / "space.yaml"), "--stand-in", "1", "--max-epochs", "400",
                      "--time-budget", BUDGET, "--concurrency", "2", "--name", "budget",
                      env=tier.env(RAY_worker_niceness="0"))  # fmt: skip
    best = check_best(tier.results / "budget", None, out)
    expect(best.get("ended_by") == "time budget", f"ended by {best.get('ended_by')!r}, not the time budget")
    expect(f"the time budget ({BUDGET}) ended the search" in out, f"no 'time budget ({BUDGET}) ended' line")
    expect(best["trials"] >= 1, "no trial ran within the budget")
    return f"{best['trials']} trials; ended by the {BUDGET} budget"


def step_cluster(tier: Tier) -> str:
    """Two nodes on 127.0.0.1 (tests/ray_cluster.py: token auth, own ports and temp dirs, stopped by pid)."""
    sys.path.insert(0, str(REPO / "tests"))
    from ray_cluster import node_cluster

    results = tier.work / "results-cluster"
    job_id = f"compat-{int(time.time())}"
    with node_cluster(2) as cluster:
        env = tier.env(cluster.env, SUBMISSION_ID=job_id)  # the cluster's token and PATH (its ray, its python)
        submitted = tier.run("cluster-submit", "-m", "tune_mlp.search", "--address", cluster.dashboard_url,
                             "--smoke-test", "--stand-in", CLUSTER_EPOCH_S, "--no_wandb", "--concurrency", "2",
                             "--storage-path", str(results), "--name", "cl", env=env)  # fmt: skip
        expect(f"ray job logs -f {job_id}" in submitted, f"no follow-up line for {job_id}:\n{tail(submitted)}")
        status, logs = wait_for_job(tier, cluster.dashboard_url, job_id, env)
        (tier.work / "logs" / "cluster-job.log").write_text(logs)
        expect(status == "SUCCEEDED", f"job {job_id} {status}:\n{tail(logs)}")
        nodes = set(cluster.node_ids)
    best = check_best(results / "cl", 2, logs)
    seen = {json.loads(line)["node_id"] for p in (results / "cl").glob("trial_*/result.json")
            for line in p.read_text().splitlines() if line.strip()}  # fmt: skip
    expect(seen == nodes, f"trials ran on {sorted(seen)}, the cluster's nodes are {sorted(nodes)}")
    return f"job SUCCEEDED; {best['trials']} trials on both nodes"


def wait_for_job(tier: Tier, address: str, job_id: str, env: dict[str, str]) -> tuple[str, str]:
    """Poll the job with `ray job status` (the token from env) until it ends; its status and logs."""
    ray = str(Path(tier.python).parent / "ray")
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    status = "PENDING"
    while time.monotonic() < deadline:
        done = subprocess.run([ray, "job", "status", job_id, "--address", address], env=env, text=True,
                              capture_output=True, timeout=120)  # fmt: skip
        found = re.search(r"Job '[^']+' (succeeded|failed|was stopped)", done.stdout + done.stderr)
        if found:
            status = {"succeeded": "SUCCEEDED", "failed": "FAILED", "was stopped": "STOPPED"}[found.group(1)]
            break
        time.sleep(3)
    else:
        subprocess.run([ray, "job", "stop", job_id, "--address", address], env=env, capture_output=True, timeout=120)
        status = f"TIMEOUT after {COMMAND_TIMEOUT_S}s"
    logs = subprocess.run([ray, "job", "logs", job_id, "--address", address], env=env, text=True,
                          capture_output=True, timeout=120)  # fmt: skip
    return status, logs.stdout + logs.stderr


# ---- running the tier --------------------------------------------------------------------------------------------


def run_tier(tier: Tier, only: Sequence[str], expect_ray: str | None, expect_hyperopt: str | None) -> list[Step]:
    (tier.work / "logs").mkdir(parents=True, exist_ok=True)
    (tier.work / "space.yaml").write_text(TINY_SPACE)
    plan: list[tuple[str, Callable[[], str], tuple[str, ...]]] = [
        ("versions", lambda: step_versions(tier, expect_ray, expect_hyperopt), ()),
        ("apis", lambda: step_apis(tier), ()),
        ("smoke", lambda: step_smoke(tier), ()),
        ("analysis", lambda: step_analysis(tier), ("smoke",)),
        ("export", lambda: step_export(tier), ("smoke",)),
        ("resume", lambda: step_resume(tier), ()),
        ("extend", lambda: step_extend(tier), ("resume",)),
        ("budget", lambda: step_budget(tier), ()),
        ("cluster", lambda: step_cluster(tier), ()),
    ]
    passed: set[str] = set()
    for name, action, needs in plan:
        if only and name not in only:
            continue
        step = Step(name)
        tier.steps.append(step)
        if missing := [need for need in needs if need not in passed]:
            step.detail = f"needs {', '.join(missing)}"
            print(f"[compat] {name}: SKIP ({step.detail})", flush=True)
            continue
        print(f"[compat] {name} ...", flush=True)
        start = time.monotonic()
        try:
            step.detail, step.result = action(), "PASS"
            passed.add(name)
        except Exception as error:  # a step's failure is a finding: record it, go on with the others
            step.result = "FAIL"
            step.detail = f"{type(error).__name__}: {error}" if not isinstance(error, StepFailed) else str(error)
        step.seconds = time.monotonic() - start
        print(f"[compat] {name}: {step.result} in {step.seconds:.0f} s: {step.detail}", flush=True)
    return tier.steps


def summary(steps: Sequence[Step], title: str) -> str:
    """The table printed at the end: one line a step (the first line of its detail), then the verdict."""
    rows = [f"{title}", f"{'step':<10} {'seconds':>8}  result  detail"]
    for step in steps:
        first = step.detail.splitlines()[0] if step.detail else ""
        rows.append(f"{step.name:<10} {step.seconds:>8.1f}  {step.result:<6}  {first[:160]}")
    failed = [step.name for step in steps if step.result != "PASS"]
    total = sum(step.seconds for step in steps)
    rows.append(f"{'total':<10} {total:>8.1f}  " + ("PASS" if not failed else f"FAIL ({', '.join(failed)})"))
    return "\n".join(rows)


# ---- a fresh venv for a release ----------------------------------------------------------------------------------


def requirements(pyproject: dict, ray: str, hyperopt: str | None) -> list[str]:
    """pyproject.toml's dependencies with Ray's (and, if given, HyperOpt's) requirement replaced by that release."""
    out = []
    for requirement in pyproject["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        if name == "ray":
            out.append(f"ray[default,tune]=={ray}")
        elif name == "hyperopt" and hyperopt:
            out.append(f"hyperopt=={hyperopt}")
        else:
            out.append(requirement)
    return out


def make_venv(venv: Path, reqs: Sequence[str], log: Path) -> str:
    """python3.11 -m venv --clear, the requirements, then this checkout as a wheel (--no-deps: they are there)."""
    python = shutil.which("python3.11") or sys.executable
    with log.open("w") as out:
        for command in (
            [python, "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--upgrade", "pip"],
            [str(venv / "bin" / "pip"), "install", *reqs],
            [str(venv / "bin" / "pip"), "install", "--no-deps", str(REPO)],
        ):
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=venv.parent).returncode != 0:
                raise StepFailed(f"`{' '.join(command[:4])} ...` failed (log {log}):\n{tail(log.read_text())}")
    return str(venv / "bin" / "python")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compat.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("ray", nargs="?", help="a Ray release to install in a fresh venv, e.g. 2.52.1")
    parser.add_argument("--here", action="store_true", help="run the tier in this interpreter (no venv)")
    parser.add_argument("--hyperopt", help="a HyperOpt release for the venv (default: pyproject.toml's)")
    parser.add_argument("--venv", help="where to make the venv (default: build/compat/ray-RELEASE)")
    parser.add_argument("--work", help="the tier's results and logs (default: a new /tmp/tmcompat-* folder)")
    parser.add_argument("--only", nargs="*", default=[], help="run only these steps (names as in the summary)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder when every step passed")
    parser.add_argument("--report", help="also write the steps as JSON to this file")
    # Given by the venv run to the tier it starts inside the venv.
    parser.add_argument("--installed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--expect-ray", help=argparse.SUPPRESS)
    parser.add_argument("--expect-hyperopt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if bool(args.ray) == args.here:
        parser.error("give a Ray release (e.g. 2.52.1) or --here, not both")
    if not (DATA_DIR.is_dir() and any(DATA_DIR.glob("train-images*"))):
        print(f"error: Fashion-MNIST is not at {DATA_DIR}: sudo apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 2
    # Short: Ray's socket paths under the cluster's temp dirs must stay < 108 characters.
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tmcompat-", dir="/tmp"))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.here:
        steps = run_tier(Tier(work, installed=args.installed), args.only, args.expect_ray, args.expect_hyperopt)
        title = f"compat --here ({sys.executable}), {date}"
    else:
        steps, title = in_venv(args, work), f"compat ray {args.ray}, hyperopt {args.hyperopt or 'as pyproject'}, {date}"
    print("\n" + summary(steps, title), flush=True)
    failed = any(step.result != "PASS" for step in steps)
    if args.report:
        Path(args.report).write_text(json.dumps([asdict(step) for step in steps], indent=1))
    if failed or args.keep:
        print(f"work folder (results, logs): {work}")
    elif not args.installed:  # the venv's tier leaves the folder to the run that made it
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def in_venv(args: argparse.Namespace, work: Path) -> list[Step]:
    """Install the release in a fresh venv, then run the tier there (this script again, with the venv's python)."""
    venv = Path(args.venv).resolve() if args.venv else REPO / "build" / "compat" / f"ray-{args.ray}"
    import tomllib  # Python 3.11: the venv run needs python3.11 anyway (--here runs on 3.10 too)

    venv.parent.mkdir(parents=True, exist_ok=True)
    reqs = requirements(tomllib.loads((REPO / "pyproject.toml").read_text()), args.ray, args.hyperopt)
    install = Step("install")
    print(f"[compat] install into {venv}: {' '.join(reqs)}; then pip install --no-deps {REPO}", flush=True)
    start = time.monotonic()
    try:
        python = make_venv(venv, reqs, work / "logs" / "install.log")
        install.result, install.detail = "PASS", f"venv {venv}"
    except StepFailed as error:
        install.result, install.detail = "FAIL", str(error)
    install.seconds = time.monotonic() - start
    print(f"[compat] install: {install.result} in {install.seconds:.0f} s", flush=True)
    if install.result != "PASS":
        return [install]
    report = work / "steps.json"
    command = [python, str(Path(__file__).resolve()), "--here", "--installed", "--work", str(work),
               "--report", str(report), "--expect-ray", args.ray, "--only", *args.only]  # fmt: skip
    if args.hyperopt:
        command += ["--expect-hyperopt", args.hyperopt]
    subprocess.run(command, cwd=work)
    if not report.is_file():
        return [install, Step("tier", result="FAIL", detail=f"the tier in {python} wrote no report")]
    return [install, *(Step(**step) for step in json.loads(report.read_text()))]


if __name__ == "__main__":
    sys.exit(main())
