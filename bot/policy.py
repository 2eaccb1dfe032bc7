"""The bridge from one live book to the array policies of ``strategies/``.

The daemon and the backtest call the very same policy functions; this module only builds the
one-row ``HedgeState`` from a Book and its greeks, and reads the answer back as a HedgeDecision.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np

from bot.config import PolicySettings
from bot.domain import Book, HedgeDecision, Instrument, PortfolioGreeks, TargetMode
from bot.greeks import year_fraction
from strategies.common import HedgeState, LotSpec
from strategies.delta_band import DeltaBandParams
from strategies.gamma_scaled import GammaScaledParams
from strategies.registry import decide as decide_arrays
from strategies.registry import decision_of
from strategies.time_band import TimeBandParams

DEFAULT_SIGMA = 0.6  # used only when the book holds no option with an IV


def policy_params(settings: PolicySettings) -> TimeBandParams | DeltaBandParams | GammaScaledParams:
    """The frozen params model of the configured policy."""
    if settings.kind == "time_band":
        return TimeBandParams(interval_seconds=settings.time_band.interval_seconds)
    if settings.kind == "delta_band":
        return DeltaBandParams(
            band=settings.delta_band.band, rebalance_to=settings.delta_band.rebalance_to
        )
    gs = settings.gamma_scaled
    return GammaScaledParams(risk_aversion=gs.risk_aversion, cost=gs.cost, min_band=gs.min_band)


def describe_params(settings: PolicySettings) -> dict[str, Any]:
    return asdict(policy_params(settings))


def lot_for(instrument: Instrument) -> LotSpec:
    return LotSpec(
        step=instrument.amount_step, min_amount=instrument.min_amount, inverse=instrument.inverse
    )


def schedule_seconds(settings: PolicySettings) -> float:
    """How often the daemon asks the policy: the interval for time-band, else ``check_seconds``."""
    if settings.kind == "time_band":
        return min(settings.time_band.interval_seconds, settings.check_seconds)
    return settings.check_seconds


def book_sigma_tau(book: Book, now: datetime) -> tuple[float, float]:
    """Vega-free summary for the gamma band: mean IV of held options and the nearest expiry."""
    ivs: list[float] = []
    taus: list[float] = []
    for pos in book.positions:
        inst = pos.instrument
        if not inst.is_option or inst.expiry is None:
            continue
        tau = year_fraction(now, inst.expiry)
        mark = book.marks.get(inst.name)
        if tau <= 0 or mark is None or mark.mark_iv is None:
            continue
        ivs.append(mark.mark_iv)
        taus.append(tau)
    sigma = float(np.mean(ivs)) if ivs else DEFAULT_SIGMA
    tau = min(taus) if taus else 1.0 / 365
    return sigma, tau


def decide(
    book: Book,
    greeks: PortfolioGreeks,
    settings: PolicySettings,
    mode: TargetMode,
    target: float,
    now: datetime,
    last_rebalance: datetime | None,
) -> HedgeDecision:
    """Ask the configured policy what to trade in the hedge instrument for this book."""
    sigma, tau = book_sigma_tau(book, now)
    price = book.hedge_quote.mid
    delta = greeks.delta(mode)
    state = HedgeState(
        delta=np.array([delta]),
        target=np.array([target]),
        gamma=np.array([greeks.gamma]),
        price=np.array([price]),
        now=np.array([now.timestamp()]),
        last_rebalance=np.array([last_rebalance.timestamp() if last_rebalance else -math.inf]),
        sigma=np.array([sigma]),
        tau=np.array([tau]),
    )
    out = decide_arrays(
        settings.kind, state, policy_params(settings), lot_for(book.hedge_instrument)
    )
    return decision_of(settings.kind, state, out)
