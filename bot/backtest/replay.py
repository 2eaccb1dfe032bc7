"""Replay a real Deribit option book through its recorded marks, hedged by each policy.

The shared chain file holds a full BTC option chain about every 6 hours (2025-12-30 to
2026-08-22). A replay picks real options at a start snapshot (by default the at-the-money
straddle of the expiry nearest ``target_days`` away), holds them snapshot by snapshot through
their real marks and implied volatilities, and hands the book to
:func:`bot.backtest.engine.hedge_book`,
the same loop and the same policy functions as the Monte-Carlo backtest.

Per snapshot and leg:

* value in USD = Deribit's mark (BTC per option) × the expiry's forward (``underlying``): the
  Deribit quotes an option's mark in coin as its Black-76 USD price on that forward divided by
  the forward;
* delta and gamma: :func:`bot.greeks.black76` on the forward, the mark IV and the snapshot time
  (Deribit's recorded delta agrees to 1e-4; it records no gamma);
* the hedge trades BTC-PERPETUAL at its recorded mark where the perpetual file covers the
  snapshot (to 2026-04-15), else at the legs' index price.

When a snapshot at or after expiry exists, the book settles there at intrinsic value on that
snapshot's index price: a proxy for Deribit's 30-minute TWAP before 08:00 UTC, said in the notes
with how far after expiry it was taken. Otherwise the replay ends at the last marks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from bot.backtest.chain import CHAIN_COLUMNS, Chain, epochs
from bot.backtest.datafiles import DERIBIT
from bot.backtest.engine import (
    BTC_PERPETUAL_LOT,
    BookMarks,
    CostModel,
    PolicyResult,
    PolicyRun,
    hedge_book,
)
from bot.backtest.history import epoch_seconds, load_funding
from bot.domain import DataError
from bot.greeks import black76
from bot.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_YEAR
from strategies.common import LotSpec

Array = npt.NDArray[np.float64]

DERIBIT_DATA = DERIBIT
CHAIN_FILE = DERIBIT_DATA / "btc_option_chain_snapshots_2025-12_2026-08.parquet"
PERP_FILE = DERIBIT_DATA / "perpetual_marks_at_snapshots_2025-12_2026-04.csv"


@dataclass(frozen=True)
class ReplayConfig:
    """Which real options to hold and how to hedge them.

    ``start``: ISO UTC; the replay begins at the first snapshot at or after it. ``expiry``:
    Deribit's code (``6FEB26``) or ``None`` for the expiry nearest ``target_days`` ahead.
    ``book``: the at-the-money ``straddle`` (call and put at the strike nearest the forward) or
    one ``call``/``put``; ``size`` coin per leg (negative = short). ``end``: ISO UTC to stop
    before expiry (``None``: hold to expiry and settle).
    """

    start: str
    policies: tuple[PolicyRun, ...]
    expiry: str | None = None
    target_days: float = 7.0
    book: Literal["straddle", "call", "put"] = "straddle"
    size: float = -1.0
    end: str | None = None
    costs: CostModel = field(default_factory=CostModel)
    lot: LotSpec = BTC_PERPETUAL_LOT
    target_delta: float = 0.0
    chain_file: str = str(CHAIN_FILE)
    perp_file: str | None = str(PERP_FILE)

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a replay needs at least one policy")
        if self.book not in ("straddle", "call", "put") or self.size == 0:
            raise ValueError("book must be straddle, call or put, with a non-zero size")


@dataclass(frozen=True)
class ReplayReport:
    """What the replay held, on which prices, and each policy's result (one path, USD)."""

    config: ReplayConfig
    instruments: tuple[str, ...]
    expiry: str
    start: str
    end: str
    snapshots: int
    perp_marks_used: int
    index_prices_used: int
    premium_usd: float  # the book's value at the start (negative when short)
    unhedged_pnl: float  # the book's value change: what no hedging would have made
    settlement_price: float | None  # the index the book settled on, when it reached expiry
    results: tuple[PolicyResult, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "results"}
        d["instruments"] = list(self.instruments)
        d["notes"] = list(self.notes)
        d["results"] = [r.to_dict() for r in self.results]
        return d


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def choose_instruments(
    config: ReplayConfig, source: Chain | None = None
) -> tuple[tuple[str, ...], str, float]:
    """The legs' instrument names, the start snapshot's file name and its time (epoch s).

    A start before the first snapshot or after the last is refused, never moved into the data.
    """
    source = source or Chain(config.chain_file)
    first_t, last_t = source.span()
    start_t = epoch_seconds(config.start)
    first_day = first_t - first_t % SECONDS_PER_DAY  # a start on the first day's date is fine
    if not first_day <= start_t <= last_t:
        raise DataError(
            f"start {config.start} is outside the recorded chain, "
            f"{_iso(first_t)[:16]} to {_iso(last_t)[:16]} UTC"
        )
    found = source.first_snapshot(start_t)
    if found is None:
        raise DataError(f"no chain snapshot at or after {config.start}")
    snap_file, t0 = found
    chain = source.rows(CHAIN_COLUMNS, [("snapshot_file", "=", snap_file)])
    days = (epochs(chain["expiry_datetime"]) - t0) / SECONDS_PER_DAY
    codes = chain["instrument_name"].str.split("-").str[1].to_numpy()
    if config.expiry is not None:
        pick = codes == config.expiry.upper()
        if not pick.any():
            raise DataError(f"expiry {config.expiry} not listed at {_iso(t0)}")
    else:
        live = days > 1.0
        if not live.any():
            raise DataError(f"no expiry more than a day after {_iso(t0)}")
        nearest = days[live][int(np.argmin(np.abs(days[live] - config.target_days)))]
        pick = days == nearest
    legs = chain[pick]
    both = legs.groupby("strike")["option_type"].nunique() == 2
    strikes = both.index[both.to_numpy()].to_numpy(dtype=np.float64)
    if strikes.size == 0:
        raise DataError("the chosen expiry has no strike with both a call and a put")
    forward = float(legs["underlying"].iloc[0])
    atm = float(strikes[np.argmin(np.abs(strikes - forward))])
    kinds = ("call", "put") if config.book == "straddle" else (config.book,)
    at = legs[(legs["strike"] == atm) & legs["option_type"].isin(kinds)]
    names = tuple(sorted(at["instrument_name"].astype(str)))
    return names, snap_file, t0


def perp_marks(path: str | None) -> dict[str, float]:
    """BTC-PERPETUAL marks by snapshot file name, or nothing when there is no file."""
    if path is None:
        return {}
    try:
        df = pd.read_csv(path, usecols=["snapshot_file", "coin", "perp_futures_mark_price"])
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read perpetual marks: {exc}") from exc
    btc = df[(df["coin"] == "BTC") & (df["perp_futures_mark_price"] > 0)]
    return dict(
        zip(btc["snapshot_file"], btc["perp_futures_mark_price"].astype(float), strict=True)
    )


@dataclass
class _Marks:
    """The held legs snapshot by snapshot: rows are snapshots, columns legs (per option)."""

    files: list[str]
    times: Array  # epoch s
    value: Array  # USD
    delta: Array
    gamma: Array
    sigma: Array
    tau: Array  # years
    index: Array  # USD, one per snapshot
    strike: Array
    is_call: npt.NDArray[np.bool_]
    notes: list[str]

    def settle(self, file: str, t: float, spot: float) -> None:
        """Append the settlement snapshot: intrinsic value on ``spot``, no greeks left."""
        payoff = np.maximum(
            np.where(self.is_call[0], spot - self.strike[0], self.strike[0] - spot), 0
        )
        zeros = np.zeros((1, self.value.shape[1]))
        self.files.append(file)
        self.times = np.append(self.times, t)
        self.value = np.vstack([self.value, payoff])
        self.delta, self.gamma = np.vstack([self.delta, zeros]), np.vstack([self.gamma, zeros])
        self.sigma, self.tau = (
            np.vstack([self.sigma, self.sigma[-1:]]),
            np.vstack([self.tau, zeros]),
        )
        self.index = np.append(self.index, spot)


def _marks(
    config: ReplayConfig, source: Chain, names: tuple[str, ...], t0: float
) -> tuple[_Marks, float]:
    """The legs' recorded marks from ``t0`` until expiry (or ``config.end``), and the expiry."""
    rows = source.rows(CHAIN_COLUMNS, [("instrument_name", "in", list(names))])
    rows = rows.drop_duplicates(["snapshot_file", "instrument_name"])
    rows = rows.assign(t=epochs(rows["timestamp"]), expiry_t=epochs(rows["expiry_datetime"]))
    expiry_t = float(rows["expiry_t"].iloc[0])
    end_t = expiry_t if config.end is None else min(expiry_t, epoch_seconds(config.end))
    rows = rows[rows["t"] >= t0].sort_values(["t", "instrument_name"])
    complete = rows.groupby("snapshot_file")["instrument_name"].transform("nunique") == len(names)
    live = rows[complete & (rows["t"] < end_t)]
    bad = live[["underlying", "implied_volatility", "index_price"]].le(0).any(axis=1)
    if bad.any() or live[["mark_price"]].lt(0).any(axis=None) or live.isna().any(axis=None):
        raise DataError(f"unusable marks for {names} (NaN, negative or zero forward/IV/index)")
    files = list(dict.fromkeys(live["snapshot_file"]))
    if len(files) < 2:
        raise DataError(f"fewer than two complete snapshots of {names} before {_iso(end_t)}")

    grid = live.pivot(index="snapshot_file", columns="instrument_name").loc[files]
    times = grid["t"].iloc[:, 0].to_numpy(dtype=np.float64)
    forward = grid["underlying"].to_numpy(dtype=np.float64)
    sigma = grid["implied_volatility"].to_numpy(dtype=np.float64)
    strike = grid["strike"].to_numpy(dtype=np.float64)
    is_call = grid["option_type"].to_numpy() == "call"
    tau = np.broadcast_to((expiry_t - times[:, None]) / SECONDS_PER_YEAR, forward.shape).copy()
    greeks = black76(forward, strike, tau, sigma, is_call)
    marks = _Marks(
        files=files,
        times=times,
        value=grid["mark_price"].to_numpy(dtype=np.float64) * forward,
        delta=greeks.delta,
        gamma=greeks.gamma,
        sigma=sigma,
        tau=tau,
        index=grid["index_price"].to_numpy(dtype=np.float64).mean(axis=1),
        strike=strike,
        is_call=is_call,
        notes=[f"{int((~complete).sum())} rows skipped in snapshots missing a leg"],
    )
    return marks, expiry_t


def run_replay(
    config: ReplayConfig, source: Chain | None = None, perp: dict[str, float] | None = None
) -> ReplayReport:
    """Hold the chosen real options from ``config.start`` and hedge them with each policy.

    ``source`` and ``perp`` (the perpetual marks) may be loaded once for many replays."""
    source = source or Chain(config.chain_file)
    names, _, t0 = choose_instruments(config, source)
    m, expiry_t = _marks(config, source, names, t0)
    spot: float | None = None
    found = source.first_snapshot(expiry_t) if config.end is None else None
    if found is not None:
        file, t_settle = found
        at_settle = source.rows(("index_price",), [("snapshot_file", "=", file)])
        spot = float(at_settle["index_price"].median())
        m.settle(file, t_settle, spot)
        lag = (t_settle - expiry_t) / SECONDS_PER_HOUR
        m.notes.append(f"settled on the index {spot:,.2f} at {_iso(t_settle)}, {lag:.1f} h late")

    perp = perp_marks(config.perp_file) if perp is None else perp
    from_perp = np.array([f in perp for f in m.files])
    prices = np.array([perp.get(f, i) for f, i in zip(m.files, m.index, strict=True)])[:, None]
    size = config.size

    def book_at(k: int) -> BookMarks:
        alive = m.tau[k] > 0
        return BookMarks(
            value=np.array([size * m.value[k].sum()]),
            delta=np.array([size * m.delta[k].sum()]),
            gamma=np.array([size * m.gamma[k].sum()]),
            sigma=float(m.sigma[k].mean()),
            tau=float(m.tau[k][alive].min()) if alive.any() else 0.0,
        )

    funding = None
    if config.costs.funding_file is not None:
        funding = load_funding(config.costs.funding_file).rate_at(m.times[:-1])
    results = hedge_book(
        prices,
        m.times - m.times[0],
        book_at,
        config.policies,
        lot=config.lot,
        costs=config.costs,
        funding_8h=funding,
        target_delta=config.target_delta,
    )
    return ReplayReport(
        config=config,
        instruments=names,
        expiry=_iso(expiry_t),
        start=_iso(m.times[0]),
        end=_iso(m.times[-1]),
        snapshots=len(m.times),
        perp_marks_used=int(from_perp.sum()),
        index_prices_used=int((~from_perp).sum()),
        premium_usd=float(book_at(0).value[0]),
        unhedged_pnl=float(results[0].outcome.option_pnl[0]),
        settlement_price=spot,
        results=results,
        notes=tuple(m.notes),
    )
