"""The experiment report as Markdown (next to its PNGs) and as one self-contained HTML file to mail around.

No templating or Markdown dependency: the text uses a tiny subset (paragraphs, **bold**, `code`, "- " bullets).
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
code { background: #f3f3f3; padding: .1em .3em; border-radius: 3px; font-size: 90%; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { border: 1px solid #ddd; padding: .35em .7em; text-align: right; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfbfb; }
figure { margin: 1.5em 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: 90%; }
""".strip()


@dataclass
class Section:
    """One heading of the report: prose, an optional table and any number of figures."""

    heading: str
    text: str = ""
    table: pd.DataFrame | None = None
    images: list[Path] = field(default_factory=list)


def _cell(value: object) -> str:
    """Short, stable cell text: 4 significant digits for floats, empty for missing values."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _show_index(table: pd.DataFrame) -> bool:
    """Print the index only when it carries information: a name, or labels that are not plain row numbers."""
    return any(name is not None for name in table.index.names) or not pd.api.types.is_integer_dtype(table.index)


def markdown_table(table: pd.DataFrame) -> str:
    """GitHub-style pipe table (our own, so `tabulate` is not needed)."""
    show_index = _show_index(table)
    header = ([str(table.index.name or "")] if show_index else []) + [str(c) for c in table.columns]
    rows = [
        ([_cell(index)] if show_index else []) + [_cell(v) for v in values]
        for index, values in zip(table.index, table.itertuples(index=False, name=None), strict=True)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    aligns = (["---"] if show_index else []) + ["---:" if n else "---" for n in numeric]
    return "\n".join([line(header), "|" + "|".join(aligns) + "|", *(line(r) for r in rows)])


def _inline(text: str) -> str:
    """Escape HTML, then `code` spans (left verbatim) and **bold** elsewhere."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """Paragraphs (blank-line separated), "- " bullet lists, **bold** and `code`: all the report text needs."""
    blocks: list[str] = []
    paragraph: list[str] = []
    bullets: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append("<p>" + " ".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()
        if bullets:
            blocks.append("<ul>\n" + "\n".join(f"<li>{_inline(b)}</li>" for b in bullets) + "\n</ul>")
            bullets.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif re.match(r"^[-*] ", line):
            if paragraph:
                flush()
            bullets.append(line[2:].strip())
        elif bullets and raw[:1].isspace():
            bullets[-1] += " " + line  # continuation of a wrapped bullet
        else:
            if bullets:
                flush()
            paragraph.append(line)
    flush()
    return "\n".join(blocks)


def _relative(image: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(Path(image).resolve(), out_dir.resolve())).as_posix()


def _data_uri(image: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(image).read_bytes()).decode("ascii")


def write_report(out_dir: Path, title: str, sections: list[Section]) -> tuple[Path, Path]:
    """Write `report.md` (images by relative path) and `report.html` (images embedded) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [str(image) for section in sections for image in section.images if not Path(image).is_file()]
    if missing:
        raise FileNotFoundError(f"report images not found: {', '.join(missing)}")

    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        md += [f"## {section.heading}", ""]
        body.append(f"<h2>{html.escape(section.heading)}</h2>")
        if section.text.strip():
            md += [section.text.strip(), ""]
            body.append(markdown_to_html(section.text))
        if section.table is not None:
            md += [markdown_table(section.table), ""]
            body.append(
                section.table.to_html(
                    index=_show_index(section.table),
                    na_rep="",
                    float_format=lambda v: f"{v:.4g}",
                    border=0,
                    classes="results",
                )
            )
        for image in section.images:
            alt = Path(image).stem
            md += [f"![{alt}]({_relative(Path(image), out_dir)})", ""]
            body.append(
                f'<figure><img src="{_data_uri(Path(image))}" alt="{html.escape(alt)}">'
                f"<figcaption>{html.escape(alt)}</figcaption></figure>"
            )

    md_path = out_dir / "report.md"
    html_path = out_dir / "report.html"
    md_path.write_text("\n".join(md).rstrip() + "\n", encoding="utf-8")
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    html_path.write_text(document, encoding="utf-8")
    return md_path, html_path
