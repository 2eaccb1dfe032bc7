"""``hedgebot --help`` starts at once: the entry point imports no heavy module at load time.
(Its speed is measured in ``make bench``, bench/bench_cli.py.)"""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "pandas",
    "matplotlib",
    "ccxt",
    "pyarrow",
    "scipy",
    "numba",
    "sqlalchemy",
    "alembic",
    "pydantic",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split(".")[0] for line in out.splitlines()}


def test_loading_the_entry_point_imports_no_heavy_module() -> None:
    loaded = _modules_after("import bot.cli.main")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_building_the_whole_parser_imports_no_heavy_module() -> None:
    loaded = _modules_after("from bot.cli.main import build_parser\nbuild_parser()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_readme_lists_every_command_and_option_the_parser_accepts() -> None:
    from pathlib import Path

    from bot.cli.usage import render

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert render() in readme, "run: .venv/bin/python -m bot.cli.usage --write README.md"
