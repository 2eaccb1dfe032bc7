"""A backtest sweep spread over a Dask cluster, with the numbers of a one-process run.

The run is cut into pieces, one per (chunk of paths, group of policies), and each piece is
:func:`bot.backtest.engine.run_piece` on a worker. Path blocks are seeded by their index and the
policies never see one another, so :func:`bot.backtest.engine.assemble` puts the pieces back
into exactly the report :func:`~bot.backtest.engine.run_backtest` gives for the same seed.

``dask.distributed`` is optional (the ``cluster`` extra) and imported only here, only when a
scheduler is given (https://distributed.dask.org/en/stable/client.html).
"""

from __future__ import annotations

import math
from typing import Any

from bot.backtest.engine import (
    BacktestConfig,
    BacktestReport,
    Progress,
    assemble,
    chunks,
    run_piece,
)

DEFAULT_CONNECT_SECONDS = 10.0
PIECES_PER_WORKER = 2
"""Pieces aimed at per worker thread, so one slow worker does not hold the whole sweep."""


class ClusterError(RuntimeError):
    """Dask is not installed or its scheduler cannot be reached: one line for the user."""


def policy_groups(n_policies: int, n_chunks: int, n_threads: int) -> list[tuple[int, ...]]:
    """Policy indices cut into as few groups as give every worker thread about
    :data:`PIECES_PER_WORKER` pieces: a group shares one set of generated paths and greeks,
    so fewer groups repeat less work."""
    wanted = max(1, math.ceil(PIECES_PER_WORKER * n_threads / max(n_chunks, 1)))
    n_groups = min(n_policies, wanted)
    size = math.ceil(n_policies / n_groups)
    return [tuple(range(i, min(i + size, n_policies))) for i in range(0, n_policies, size)]


def _client(address: str, connect_seconds: float) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(
            "--scheduler needs dask.distributed: pip install 'hedgebot[cluster]'"
        ) from None
    try:
        return Client(address, timeout=connect_seconds, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {reason}") from None


def run_on_cluster(
    config: BacktestConfig,
    address: str,
    progress: Progress | None = None,
    connect_seconds: float = DEFAULT_CONNECT_SECONDS,
) -> BacktestReport:
    """Run ``config`` on the Dask scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``).

    Raises :class:`ClusterError` when dask is missing or the scheduler does not answer within
    ``connect_seconds``; an error inside a piece (bad data, a refused config) is raised here
    as the worker raised it.
    """
    client = _client(address, connect_seconds)
    try:
        from distributed import as_completed

        threads = max(1, sum(client.nthreads().values()))
        spans = chunks(config)
        groups = policy_groups(len(config.policies), len(spans), threads)
        work = [(first, count, which) for first, count in spans for which in groups]
        futures = [
            client.submit(run_piece, config, first, count, which, pure=False)
            for first, count, which in work
        ]
        counts = dict(spans)
        pieces = []
        done = 0
        with client.as_current():  # as_completed finds its client as the current one
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                piece = future.result()
                pieces.append(piece)
                done += counts[piece.first] * len(piece.which)
                if progress is not None:
                    progress(done // len(config.policies), config.n_paths)
        return assemble(config, pieces)
    finally:
        client.close()
