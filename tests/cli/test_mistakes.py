"""Every user mistake: one line naming the input and what would be valid, exit 2, no traceback,
and no database file left behind."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.cli.main import build_parser
from tests.cli.cli_kit import fresh_home, run

# (argv, environment, a word the one line must contain)
MISTAKES: list[tuple[list[str], dict[str, str], str]] = [
    (["status"], {"HEDGEBOT__VENUE__CURRENCIES": "BTC,ETH"}, "HEDGEBOT__VENUE__CURRENCIES"),
    (["status"], {"HEDGEBOT__POLCY__KIND": "delta_band"}, "HEDGEBOT__POLICY__KIND"),
    (["status"], {"HEDGEBOT__RISK__MAX_ORDER_USD": "-5"}, "HEDGEBOT__RISK__MAX_ORDER_USD"),
    (["status"], {"HEDGEBOT__VENUE": "x"}, "HEDGEBOT__VENUE"),
    (["--config", "nope.yaml", "status", "--paper"], {}, "nope.yaml"),
    (["report", "--since", "yesterday"], {}, "--since"),
    (["report", "--db", "notaurl"], {}, "--db"),
    (["report", "--rows", "0"], {}, "--rows"),
    (["report", "--funding", "lots"], {}, "--funding"),
    (["risk", "--vols", "a,b"], {}, "--vols"),
    (["risk", "--step", "0"], {}, "--step"),
    (["risk", "--range", "-1"], {}, "--range"),
    (["risk", "--step", "0.5", "--range", "0.1"], {}, "--step"),
    (["risk", "--currency", "SOL"], {}, "SOL"),
    (["rebalance", "--currency", "DOGE"], {}, "DOGE"),
    (["rebalance", "--currency", "12"], {}, "--currency"),
    (["run", "--duration", "soon"], {}, "--duration"),
    (["run", "--max-cycles", "0"], {}, "--max-cycles"),
    (["halt", "--currency", "SOL"], {}, "SOL"),
    (["sim", "--port", "99999"], {}, "--port"),
    (["sim", "--faults", "{nope"], {}, "--faults"),
    (["sim", "--faults", '{"seed": "abc"}'], {}, "seed"),
    (["sim", "--faults", '{"seed": -1}'], {}, "seed"),
    (["sim", "--db", "nowhere"], {}, "--db"),
    (["db", "downgrade"], {}, "downgrade"),
    (["nonsense"], {}, "nonsense"),
    (["--log-format", "xml", "status"], {}, "--log-format"),
    (["backtest", "--paths", "0"], {}, "--paths"),
    (["backtest", "--model", "replay"], {}, "--history"),
    (["backtest", "--model", "bootstrap", "--history", "nope.csv"], {}, "nope.csv"),
    (["backtest", "--deribit-replay", "tomorrow"], {}, "tomorrow"),
    (["backtest", "--deribit-replay", "2019-01-01T00:00"], {}, "2019"),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return fresh_home(tmp_path, monkeypatch)


def _one_line(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _assert_one_line_exit_2(code: int, err: str, word: str) -> None:
    lines = _one_line(err)
    assert "Traceback" not in err, err
    assert code == 2, err
    # a settings error is a heading and its lines; everything else is exactly one line
    body = lines[1:] if lines and lines[0].startswith("hedgebot: invalid settings") else lines
    assert len(body) == 1, err
    assert word in body[0], err


@pytest.mark.parametrize(
    ("argv", "env", "word"), MISTAKES, ids=[" ".join(m[0]) + str(m[1]) for m in MISTAKES]
)
def test_a_user_mistake_gets_one_line_naming_the_input_and_exit_2(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    word: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = run(argv)
    _assert_one_line_exit_2(code, capsys.readouterr().err, word)
    assert list(home.glob("*.db*")) == []


def test_environment_errors_are_reported_as_environment_errors_not_as_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "config.yaml").write_text("risk:\n  max_order_usd: 1000\n")
    monkeypatch.setenv("HEDGEBOT__RISK__MAX_DATA_AGE_SECONDS", "-3")
    assert run(["status"]) == 2
    err = capsys.readouterr().err
    assert "environment variable HEDGEBOT__RISK__MAX_DATA_AGE_SECONDS" in err
    assert "config.yaml" not in err


def test_a_bad_value_in_the_file_names_the_file_and_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "mine.yaml").write_text("risk:\n  max_order_usd: 1000\n  max_data_age_seconds: -3\n")
    assert run(["--config", "mine.yaml", "status"]) == 2
    assert "risk.max_data_age_seconds" in (err := capsys.readouterr().err)
    assert "mine.yaml line 3" in err


def test_sim_on_a_busy_port_says_so_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _listening() as busy:
        code = run(["sim", "--port", str(busy), "--db", ""])
    _assert_one_line_exit_2(code, capsys.readouterr().err, f"--port {busy}")


def _value_options() -> Iterator[tuple[str, str, argparse.Action]]:
    """Every (command, option, action) of the parser that takes a value."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen: set[int] = set()
    for name, command in sub.choices.items():
        if id(command) in seen:
            continue
        seen.add(id(command))
        for action in command._actions:
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                yield name, action.option_strings[-1], action


SWEEP = [
    (name, option, value)
    for name, option, action in _value_options()
    for value in ("nope", "-1", "0", "nan")
    if name != "backtest" or action.type is not None
]


@pytest.mark.parametrize(("command", "option", "value"), SWEEP)
def test_a_sweep_of_every_option_with_bad_values_finds_no_traceback_and_no_new_database(
    home: Path, capsys: pytest.CaptureFixture[str], command: str, option: str, value: str
) -> None:
    argv = [command]
    if command == "backtest":
        argv += ["--paths", "2", "--days", "0.25", "--policy", "delta_band"]
    if command == "sim":
        argv += ["--port", "99999"]  # stops before serving, whatever the option under test
    code = run([*argv, option, value])
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err, err
    assert code in (0, 1, 2, 3), err
    if code == 2:
        assert len(_one_line(err)) == 1 or err.startswith("hedgebot: invalid settings"), err
    assert list(home.glob("*.db*")) == []


@contextmanager
def _listening() -> Iterator[int]:
    """A port something listens on, for as long as the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "--paper", "--csv", "afile/out"],
        ["report", "--paper", "--plots", "afile/out"],
        ["risk", "--paper", "--plot", "afile/x.png"],
    ],
)
def test_an_output_path_that_cannot_be_written_gets_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    (home / "afile").write_text("a file, not a directory")
    assert run(["db", "upgrade", "--paper"]) == 0
    capsys.readouterr()
    code = run(argv)
    _assert_one_line_exit_2(code, capsys.readouterr().err, argv[-2])
