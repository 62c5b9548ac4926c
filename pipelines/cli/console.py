"""The rich console every command prints through.

On a terminal it wraps at the terminal width. Written to a file, a pipe or a cron
log it never wraps: rich's default of 80 columns split paths mid-word there, and a
split path cannot be copied (issue 10, row 18).
"""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["make_console"]


def make_console(stderr: bool = False) -> Console:
    """A :class:`rich.console.Console` for stdout (or stderr) that wraps only on a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    is_terminal = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, soft_wrap=not is_terminal)
