"""Terminal tables (rich): aligned columns with units in the headers, a title saying what ran.

Rendered to text, without colour unless the output is a terminal, so commands can print, test
and pipe the same string. rich is imported on first use only: ``hedgebot --help`` never pays it.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Sequence
from typing import Any

WIDTH = 240  # off a terminal: wide enough that no column is cut; a table takes what it needs


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    right: Iterable[int] = (),
    caption: str | None = None,
) -> str:
    """``rows`` under ``columns`` (put the unit in the header, e.g. ``"delta (BTC)"``); the
    columns numbered in ``right`` are right-aligned (numbers)."""
    from rich.box import SIMPLE_HEAD
    from rich.table import Table

    aligned = set(right)
    t = Table(title=title, title_justify="left", box=SIMPLE_HEAD, caption=caption)
    for i, name in enumerate(columns):
        t.add_column(name, justify="right" if i in aligned else "left", no_wrap=i in aligned)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return render(t)


def render(renderable: Any) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    tty = sys.stdout.isatty()
    width = Console().width if tty else WIDTH
    console = Console(
        file=buffer, width=width, force_terminal=tty, color_system="auto" if tty else None
    )
    console.print(renderable)
    return buffer.getvalue().rstrip("\n")
