"""With an API key, an API secret and a database password set, no error path of the command
line prints, logs or writes any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.common import redact_url, scrub
from tests.cli.cli_kit import fresh_home, run

API_KEY = "KEY-sentinel-7f3a9"
API_SECRET = "SECRET-sentinel-c41d2"
DB_PASSWORD = "PW-sentinel-93be1"
SECRETS = (API_KEY, API_SECRET, DB_PASSWORD)
PG_URL = f"postgresql://trader:{DB_PASSWORD}@127.0.0.1:1/hedgebot"

# (argv, extra environment, file contents of config.yaml or None)
PATHS: list[tuple[list[str], dict[str, str], str | None]] = [
    (["status"], {"HEDGEBOT__VENUE__CURRENCIES": '["SOL"]'}, None),
    (["status"], {"HEDGEBOT__VENUE__KIND": "deribit", "HEDGEBOT__MARKET__SPEED": "10"}, None),
    (["status"], {}, "venue:\n  currencies: [SOL]\n"),
    (["status"], {}, "venue:\n  kind: deribit\nmarket:\n  speed: 10\n"),
    (["status"], {"HEDGEBOT__VENUE__API_SECRETS": "x"}, None),
    (["status"], {"HEDGEBOT__VENUE__TIMEOUT_SECONDS": "-1"}, None),
    (["status"], {"HEDGEBOT__VENUE": '{"api_secret": 1}'}, None),
    (["status"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["status", "--json"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["db", "upgrade"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["db", "current"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["report"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["report", "--db", PG_URL], {}, None),
    (["halt"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["rebalance", "--yes"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["run", "--max-cycles", "1"], {"HEDGEBOT__DATABASE__URL": PG_URL}, None),
    (["status"], {"HEDGEBOT__VENUE__KIND": "deribit", "HEDGEBOT__VENUE__NETWORK": "custom"}, None),
    (["rebalance", "--paper", "--dry-run"], {}, None),
    (["status"], {}, "venue:\n  api_secret: " + API_SECRET + "\n"),
    (
        ["check"],
        {
            "HEDGEBOT__VENUE__KIND": "deribit",
            "HEDGEBOT__VENUE__NETWORK": "custom",
            "HEDGEBOT__VENUE__URL": f"http://trader:{DB_PASSWORD}@127.0.0.1:1/",
        },
        None,
    ),
]


@pytest.mark.parametrize(("argv", "env", "config"), PATHS)
def test_no_error_path_shows_a_secret_in_output_logs_or_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    config: str | None,
) -> None:
    home = fresh_home(tmp_path, monkeypatch)
    monkeypatch.setenv("HEDGEBOT__VENUE__API_KEY", API_KEY)
    monkeypatch.setenv("HEDGEBOT__VENUE__API_SECRET", API_SECRET)
    monkeypatch.setenv("HEDGEBOT__LOGGING__LEVEL", "debug")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if config is not None:
        (home / "config.yaml").write_text(config)
    code = run(argv)
    out = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in out.err
    written = b"".join(
        p.read_bytes() for p in home.rglob("*") if p.is_file() and p.name != "config.yaml"
    )
    for secret in SECRETS:
        assert secret not in out.out
        assert secret not in out.err
        assert secret.encode() not in written


def test_a_url_password_is_masked_and_the_rest_kept() -> None:
    assert redact_url(PG_URL) == "postgresql://trader:****@127.0.0.1:1/hedgebot"
    assert redact_url("sqlite:///hedgebot.db") == "sqlite:///hedgebot.db"
    assert DB_PASSWORD not in scrub(f"could not connect with {PG_URL}")
    assert "sentinel" not in scrub(f"key {API_KEY} rejected", [API_KEY])


def test_the_demo_refusing_bad_settings_shows_no_secret(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HEDGEBOT__")}
    env.update(
        {
            "HEDGEBOT__VENUE__API_KEY": API_KEY,
            "HEDGEBOT__VENUE__API_SECRET": API_SECRET,
            "HEDGEBOT__VENUE__CURRENCIES": '["SOL"]',
            "HEDGEBOT__DATABASE__URL": PG_URL,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli.demo", "--paper", "--hours", "0.5"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    # The demo lives in its own world: it sets the environment's settings aside, saying so by
    # name, and runs on its own file; nothing it prints carries the secret.
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"ignoring HEDGEBOT__DATABASE__URL" in done.stdout
    for secret in SECRETS:
        assert secret.encode() not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "argv", [["db", "upgrade"], ["db", "current"], ["status"], ["status", "--json"]]
)
def test_a_password_given_as_a_url_query_parameter_is_never_shown(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    home = fresh_home(tmp_path, monkeypatch)
    url = f"sqlite:///{home}/live.db?password={DB_PASSWORD}"
    monkeypatch.setenv("HEDGEBOT__DATABASE__URL", url)
    monkeypatch.setenv("HEDGEBOT__LOGGING__LEVEL", "debug")
    run(["db", "upgrade"])
    run(argv)
    out = capsys.readouterr()
    assert "live.db" in out.out + out.err  # it did name the ledger
    assert DB_PASSWORD not in out.out + out.err
    assert redact_url(f"postgresql://u@h/db?sslmode=require&password={DB_PASSWORD}") == (
        "postgresql://u@h/db?sslmode=require&password=****"
    )
