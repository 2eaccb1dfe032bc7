"""The files to deploy hedgebot: the systemd unit, the image, the compose file, the dashboard."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.clock import FakeClock
from bot.monitor.metrics import Metrics
from tests.support.books import NOW

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "hedgebot.service"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_restarts_on_failure_notifies_and_is_sandboxed() -> None:
    service = _unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert int(service["WatchdogSec"]) > 60  # longer than the default check period
    assert service["EnvironmentFile"] == "/etc/hedgebot/hedgebot.env"
    assert service["User"] != "root"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/var/lib/hedgebot",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert " run" in service["ExecStart"]


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that ExecStart exists: point it at this checkout's hedgebot
    hedgebot = Path(sys.executable).with_name("hedgebot")
    unit = tmp_path / "hedgebot.service"
    unit.write_text(UNIT.read_text().replace("/opt/hedgebot/.venv/bin/hedgebot", str(hedgebot)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    if "Failed to connect to bus" in done.stderr or "System has not been booted" in done.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # unknown keys and bad values only warn
    score = subprocess.run(
        [analyze, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", score.stdout)
    if exposure is not None:  # systemd 250 and later score a unit file offline
        assert float(exposure.group(1)) <= 2.0, score.stdout[-1500:]


def test_the_image_runs_as_an_unprivileged_user_and_probes_healthz() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "/healthz" in text
    assert "FROM python:3.11-slim" in text


def test_the_image_builds_where_a_docker_engine_answers() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        pytest.skip("docker client present but no Docker engine answers (`docker info` failed)")
    done = subprocess.run(
        [docker, "build", "-f", str(DEPLOY / "Dockerfile"), "-t", "hedgebot:test", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    whoami = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "id", "hedgebot:test", "-u"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert whoami.stdout.strip() not in ("", "0")


def test_the_compose_file_runs_the_daemon_beside_postgresql_without_secrets_in_it() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) >= {"postgres", "hedgebot"}
    assert services["postgres"]["image"].startswith("postgres:")
    daemon = services["hedgebot"]
    assert daemon["command"] == ["run"]
    assert daemon["environment"]["HEDGEBOT__DATABASE__URL"].startswith("postgresql+psycopg://")
    assert "@postgres:" in daemon["environment"]["HEDGEBOT__DATABASE__URL"]
    assert ":" not in daemon["environment"]["HEDGEBOT__DATABASE__URL"].split("//")[1].split("@")[0]
    assert all(p.startswith("127.0.0.1:") for p in daemon["ports"])
    assert "API_SECRET=" not in text
    assert "PASSWORD=" not in text


def test_the_dashboard_shows_only_metrics_the_daemon_serves_and_every_one_the_issue_lists() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "hedgebot.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    used = set(re.findall(r"hedgebot_[a-z_]+", exprs))
    served = {m.name for m in Metrics(FakeClock(NOW).now).registry.collect()}
    served |= {f"{n}_total" for n in served} | {f"{n}_bucket" for n in served}
    assert used <= served, used - served
    for wanted in (
        "hedgebot_delta_usd",
        "hedgebot_hedged_delta_coin",
        "hedgebot_band_low_coin",
        "hedgebot_dollar_gamma_usd",
        "hedgebot_vega_usd",
        "hedgebot_hedge_position_usd",
        "hedgebot_trading_state",
        "hedgebot_cycles_total",
        "hedgebot_orders_total",
        "hedgebot_fills_total",
        "hedgebot_fees_usd_total",
        "hedgebot_slippage_usd_total",
        "hedgebot_last_read_age_seconds",
        "hedgebot_venue_clock_offset_seconds",
        "hedgebot_venue_request_duration_seconds_bucket",
        "hedgebot_orders_unknown",
        "hedgebot_last_success_age_seconds",
    ):
        assert wanted in used, wanted
