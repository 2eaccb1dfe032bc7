"""Running ``hedgebot`` in-process as a user would: argv and environment in, exit code out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.cli.main import main


def run(argv: Sequence[str]) -> int:
    """``main(argv)``'s exit code, whether it returns or argparse exits."""
    try:
        return main(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no HEDGEBOT__ variables but JSON logs."""
    for key in list(os.environ):
        if key.upper().startswith("HEDGEBOT__"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEDGEBOT__LOGGING__FORMAT", "json")
    return tmp_path
