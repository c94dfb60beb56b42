"""The README and docs/ say what is true: every documented command parses with its real parser, every script and
make target it names exists, and every link (with its #anchor) leads somewhere. Nothing is run."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `python -m NAME` -> the module whose build_parser() that command parses its flags with.
PARSERS = {
    "tune_mlp.train": "tune_mlp.train",
    "tune_mlp.search": "tune_mlp.search.cli",
    "tune_mlp.export": "tune_mlp.export",
    "tune_mlp.predict": "tune_mlp.predict",
    "tune_mlp.mnist_wheel": "tune_mlp.mnist_wheel",
    "tune_mlp.study.compare_losses": "tune_mlp.study.compare_losses",
    "tune_mlp.study.mnist_configs": "tune_mlp.study.mnist_configs",
    "analysis": "analysis.__main__",
}
SUBMITS_A_SEARCH = {"scripts/submit.sh"}  # its flags go to python -m tune_mlp.search on the head
README_MAX_LINES = 150  # one screen per flow (issue 25): the rest lives in docs/


def shell_lines(path: Path) -> list[str]:
    """The command lines of a file's ```bash blocks: continuations joined, comments dropped."""
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", path.read_text(), flags=re.S)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def arguments(text: str) -> list[str]:
    """A documented command's arguments: `[--flag X]` is an optional part, kept; `[words]` is prose, dropped."""
    text = re.sub(r"\[(?!-)[^\]]*\]", "", text)
    return shlex.split(text.replace("[", "").replace("]", ""))


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(file, program, arguments) for every `python -m ...` and `scripts/...` line of the README and docs/."""
    found = []
    for path in DOCS:
        for line in shell_lines(path):
            if match := re.search(r"\bpython -m ([\w.]+)(.*)", line):
                found.append((path.name, match[1], arguments(match[2])))
            elif match := re.search(r"(?:^|\s)(scripts/[\w.-]+)(.*)", line):
                found.append((path.name, match[1], arguments(match[2])))
    return found


def test_the_docs_show_commands_to_check() -> None:
    programs = {program for _, program, _ in documented_commands()}
    assert {"tune_mlp.train", "tune_mlp.search", "analysis", "tune_mlp.export", "scripts/submit.sh"} <= programs


@pytest.mark.parametrize(("doc", "program", "args"), documented_commands(), ids=lambda value: str(value)[:40])
def test_a_documented_command_parses(doc: str, program: str, args: list[str], capsys) -> None:
    if program.startswith("scripts/"):
        assert (REPO / program).is_file(), f"{doc}: {program} does not exist"
        if program.endswith(".yaml") or program not in SUBMITS_A_SEARCH:
            return
        program = "tune_mlp.search"
    if program == "pytest":
        return
    assert program in PARSERS, f"{doc}: python -m {program}: not a command of ours (or add it to PARSERS)"
    parser = importlib.import_module(PARSERS[program]).build_parser()
    try:
        parser.parse_args(args)
    except SystemExit:
        error = capsys.readouterr().err.strip().splitlines()[-1]  # argparse's "error: ..." line, after its usage
        pytest.fail(f"{doc}: python -m {program} {shlex.join(args)}: {error}")


def test_the_make_targets_the_readme_names_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.M))
    named = {line.split()[1] for line in shell_lines(REPO / "README.md") if line.startswith("make ")}
    assert named == {"search", "test", "test-fast"} and named <= targets, (named, targets)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_every_link_leads_somewhere(path: Path) -> None:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no {linked.relative_to(REPO) if linked.is_relative_to(REPO) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert broken == [], f"{path.relative_to(REPO)}: broken links: {broken}"


def test_the_readme_stays_one_screen_per_flow() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, over {README_MAX_LINES}: move details into docs/ and link them"
    )
    flows = re.findall(r"^## (.+)$", "\n".join(lines), flags=re.M)
    assert flows[:7] == ["Two commands", "Train", "Search", "Analysis", "Export and predict", "Cluster",
                         "Tests and figures"]  # fmt: skip
