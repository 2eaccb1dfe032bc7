"""``hedgebot run`` as systemd and an operator see it: the wiring reads the process environment."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.store.db import upgrade
from tests.monitor.kit import receiver


def test_hedgebot_run_notifies_systemd_and_alerts_from_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in list(os.environ):
        if key.startswith("HEDGEBOT"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    with notify, receiver() as r:
        paper = f"sqlite:///{tmp_path}/paper.db"
        for key, value in {
            "HEDGEBOT__DATABASE__PAPER_URL": paper,
            "HEDGEBOT__POLICY__CHECK_SECONDS": "0.05",
            "HEDGEBOT__LOGGING__FORMAT": "json",
            "HEDGEBOT__MONITOR__METRICS": "true",
            "HEDGEBOT__MONITOR__PORT": "0",
            "HEDGEBOT_ALERT_URLS": r.url,
            "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
        }.items():
            monkeypatch.setenv(key, value)
        upgrade(paper)
        assert main(["run", "--paper", "--max-cycles", "3"]) == 0
        messages = r.wait_for(1)
        notify.setblocking(False)
        states = []
        while True:
            try:
                states.append(notify.recv(256).decode())
            except BlockingIOError:
                break
    out = capsys.readouterr()
    assert states[0] == "READY=1\nSTATUS=reconciled, hedging"
    assert states.count("WATCHDOG=1") == 3
    assert states[-1] == "STOPPING=1"
    assert [m["title"] for m in messages] == ["hedgebot stopped"]
    assert "metrics_serving" in out.err + out.out
    assert r.url.split("//")[1] not in out.err + out.out
