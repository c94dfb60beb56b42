"""One base for every error that is the user's input (a path, a file, a value): CLIs print it, never a traceback."""

from __future__ import annotations


class UserInputError(Exception):
    """Reported by the command-line tools as one ``error: ...`` line and exit code 2."""
