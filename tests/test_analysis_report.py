"""analysis/report.py: report.md with relative image links and a self-contained report.html."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_search import make_histories, make_trials

from analysis import plots_search
from analysis.report import Section, markdown_table, markdown_to_html, write_report


@pytest.fixture(scope="module")
def search() -> tuple[pd.DataFrame, pd.DataFrame]:
    trials = make_trials()
    return trials, make_histories(trials)


def test_report(tmp_path: Path, search) -> None:
    trials, histories = search
    images = [
        plots_search.learning_curves(histories, trials, tmp_path / "learning_curves.png"),
        plots_search.best_so_far(histories, tmp_path / "best_so_far.png"),
    ]
    table = pd.DataFrame({"trial": ["trial_04", "trial_03"], "val_accuracy": [0.8812, 0.8634], "epochs": [8, 8]})
    sections = [
        Section("Summary", "The **best** trial used `adam`.\n\n- lr <0.01 & rising\n- second point", table),
        Section("Search", "Curves below.", None, images),
        Section("Empty", ""),
    ]
    md_path, html_path = write_report(tmp_path / "report", "Fashion-MNIST <search>", sections)
    assert md_path == tmp_path / "report" / "report.md"
    page = html_path.read_text()
    assert page.count('<img src="data:image/png;base64,') == len(images)
    for value in ("trial_04", "0.8812", "0.8634"):
        assert value in page
    assert "<strong>best</strong>" in page and "<code>adam</code>" in page
    assert "<li>lr &lt;0.01 &amp; rising</li>" in page
    assert "Fashion-MNIST &lt;search&gt;" in page
    markdown = md_path.read_text()
    for image in images:
        assert f"![{image.stem}](../{image.name})" in markdown
    assert "| trial_04 | 0.8812 | 8 |" in markdown
    # The embedded images are the real files.
    uri = re.search(r'data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(uri) == images[0].read_bytes()


def test_report_images_inside_out_dir_are_referenced_by_file_name(tmp_path: Path, search) -> None:
    trials, histories = search
    image = plots_search.best_so_far(histories, tmp_path / "best_so_far.png")
    md_path, _ = write_report(tmp_path, "t", [Section("s", "x", images=[image])])
    assert "![best_so_far](best_so_far.png)" in md_path.read_text()


def test_markdown_helpers() -> None:
    table = pd.DataFrame({"a|b": [1.0, np.nan]}, index=pd.Index(["x", "y"], name="row"))
    lines = markdown_table(table).splitlines()
    assert lines[0] == "| row | a\\|b |" and lines[1] == "|---|---:|" and lines[3] == "| y |  |"
    assert markdown_to_html("one\ntwo\n\nthree") == "<p>one two</p>\n<p>three</p>"
    assert markdown_to_html("`**x**`") == "<p><code>**x**</code></p>"
