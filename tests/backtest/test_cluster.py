"""A sweep on a local Dask cluster gives exactly the numbers of the one-process run."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import fields, replace

import numpy as np
import pytest

from bot.backtest.cluster import ClusterError, policy_groups, run_on_cluster
from bot.backtest.engine import BacktestConfig, BacktestReport, run_backtest, run_piece
from bot.backtest.frontier import standard_scenario, sweep_runs
from bot.cli.main import main

distributed = pytest.importorskip("distributed")


def _sweep(n_paths: int = 2500) -> BacktestConfig:
    runs = sweep_runs(intervals=(900.0, 3600.0), bands=(0.05,), risk_aversions=(1e-3,))
    config = standard_scenario(runs, n_paths=n_paths, seed=11)
    return replace(config, horizon_days=1.0, chunk_paths=1000)


def _same(a: BacktestReport, b: BacktestReport) -> None:
    assert (a.n_paths, a.n_steps, a.s0, a.book_value) == (b.n_paths, b.n_steps, b.s0, b.book_value)
    for x, y in zip(a.results, b.results, strict=True):
        assert x.label == y.label
        for f in fields(x.outcome):
            assert np.array_equal(getattr(x.outcome, f.name), getattr(y.outcome, f.name)), f.name


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def test_a_sweep_on_a_local_dask_cluster_equals_the_local_run_path_for_path(
    scheduler: str,
) -> None:
    config = _sweep()
    ticks: list[tuple[int, int]] = []
    remote = run_on_cluster(config, scheduler, lambda d, t: ticks.append((d, t)))
    _same(remote, run_backtest(config))
    assert ticks[-1] == (2500, 2500)


def test_the_command_line_sweep_with_a_scheduler_prints_the_local_json(
    scheduler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", os.devnull, "backtest", "--paths", "2000", "--days", "1"]
    argv += ["--chunk-paths", "1000", "--policy", "delta_band:band=0.05", "--json"]
    assert main(argv) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*argv, "--scheduler", scheduler]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["results"] == local["results"]
    assert remote["book_value"] == local["book_value"]


def test_pieces_cut_by_policy_and_by_chunk_equal_one_whole_piece() -> None:
    config = _sweep(n_paths=1000)
    whole = run_piece(config, 0, 1000, (0, 1, 2, 3))
    halves = [run_piece(config, 0, 1000, (0, 2)), run_piece(config, 0, 1000, (1, 3))]
    by_policy = {i: o for p in halves for i, o in zip(p.which, p.outcomes, strict=True)}
    for i, outcome in enumerate(whole.outcomes):
        assert np.array_equal(outcome.hedged_pnl, by_policy[i].hedged_pnl)


def test_policy_groups_cover_every_policy_once_and_give_each_thread_two_pieces() -> None:
    assert policy_groups(22, 1, 2) == [
        (0, 1, 2, 3, 4, 5),
        (6, 7, 8, 9, 10, 11),
        (12, 13, 14, 15, 16, 17),
        (18, 19, 20, 21),
    ]
    assert policy_groups(22, 10, 4) == [tuple(range(22))]
    assert policy_groups(3, 1, 8) == [(0,), (1,), (2,)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_a_cluster_error_not_a_traceback() -> None:
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
        run_on_cluster(_sweep(), f"tcp://127.0.0.1:{_closed_port()}", connect_seconds=1.0)


def test_an_unreachable_scheduler_on_the_command_line_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    argv = ["--config", os.devnull, "backtest", "--paths", "1000", "--days", "1"]
    code = main([*argv, "--scheduler", address, "--scheduler-timeout", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert err.startswith("hedgebot backtest: cannot reach the Dask scheduler at")
