"""The driver of a submitted search job: ``python -m tune_mlp.cluster.driver ARGS`` (the entrypoint ``job`` builds).

It runs ``python -m tune_mlp.search --address auto ARGS --space FILE`` on the head, where FILE holds the search
space the submitter sent as text. It first moves to the home directory: the directory Ray starts a job in is
Ray's to manage, and a relative ``--storage-path`` (the default ``./ray_results``) must not land inside it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tune_mlp.cluster.job import SPACE_NAME_ENV, SPACE_TEXT_ENV


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    os.chdir(Path.home())
    text = os.environ.get(SPACE_TEXT_ENV)
    if text is not None:
        # The stem names the experiment by default, as on the submitting machine.
        path = Path(tempfile.mkdtemp(prefix="tune_mlp_job_")) / f"{os.environ.get(SPACE_NAME_ENV, 'space')}.yaml"
        path.write_text(text)
        args += ["--space", str(path)]
    from tune_mlp.search.cli import main as search_main

    return search_main(["--address", "auto", *args])


if __name__ == "__main__":
    sys.exit(main())
