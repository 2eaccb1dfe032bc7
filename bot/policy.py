"""The bridge from one live book to the array policies of ``strategies/``.

The daemon and the backtest call the very same policy functions, and build their params the same
way (the registry's :func:`strategies.registry.make_params` from a settings section); this module
only builds the one-row ``HedgeState`` from a Book and its greeks, and reads the answer back as a
HedgeDecision.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import structlog

from bot.config import PolicySettings, VolatilitySettings
from bot.domain import Book, DataError, HedgeDecision, Instrument, PortfolioGreeks, TargetMode
from bot.store.ledger import Ledger
from bot.units import DAYS_PER_YEAR
from bot.volatility import RollingVol, make_forecaster
from strategies.common import HedgeOrders, HedgeState, LotSpec, Reason
from strategies.registry import PolicyParams, make_params
from strategies.registry import decide as decide_arrays

DEFAULT_SIGMA = 0.6  # used only when the book holds no option with an IV

log = structlog.get_logger("hedgebot.policy")


def policy_params(settings: PolicySettings, sigma: float | None = None) -> PolicyParams:
    """The configured policy's params, built by the registry from its settings section.

    With ``volatility.scale_time_band`` and a ``sigma``, the time-band interval is scaled by
    ``(reference / sigma)²`` (within x0.25..x4): the expected delta drift per interval stays
    what it is at the reference vol.
    """
    # Only the configured policy's section: dumping every section cost 50 us a cycle.
    values: dict[str, Any] = getattr(settings, settings.kind).model_dump()
    vol = settings.volatility
    if settings.kind == "time_band" and vol.scale_time_band and sigma is not None:
        values["interval_seconds"] *= float(np.clip((vol.reference / sigma) ** 2, 0.25, 4.0))
    return make_params(settings.kind, values)


def describe_params(settings: PolicySettings, sigma: float | None = None) -> dict[str, Any]:
    """The params the policy ran with, and the sigma it was given, for the ledger."""
    return {**asdict(policy_params(settings, sigma)), "sigma": sigma}


def lot_for(instrument: Instrument) -> LotSpec:
    return LotSpec(
        step=instrument.amount_step, min_amount=instrument.min_amount, inverse=instrument.inverse
    )


def schedule_seconds(settings: PolicySettings) -> float:
    """How often the daemon asks the policy: the interval for time-band, else ``check_seconds``."""
    if settings.kind == "time_band":
        return min(settings.time_band.interval_seconds, settings.check_seconds)
    return settings.check_seconds


def decide(
    book: Book,
    greeks: PortfolioGreeks,
    settings: PolicySettings,
    mode: TargetMode,
    target: float,
    now: datetime,
    last_rebalance: datetime | None,
    sigma: float | None = None,
) -> HedgeDecision:
    """Ask the configured policy what to trade in the hedge instrument for this book.

    ``sigma`` is the volatility the policy should use (a forecast); None uses the held options'
    mean IV.
    """
    implied = greeks.mean_iv if greeks.mean_iv is not None else DEFAULT_SIGMA
    tau = greeks.nearest_tau if greeks.nearest_tau is not None else 1.0 / DAYS_PER_YEAR
    vol = sigma if sigma is not None else implied
    price = book.hedge_quote.mid
    state = HedgeState(
        delta=np.array([greeks.delta(mode)]),
        target=np.array([target]),
        gamma=np.array([greeks.gamma]),
        price=np.array([price]),
        now=np.array([now.timestamp()]),
        last_rebalance=np.array([last_rebalance.timestamp() if last_rebalance else -math.inf]),
        sigma=np.array([vol]),
        tau=np.array([tau]),
    )
    params = policy_params(settings, vol)
    out = decide_arrays(settings.kind, state, params, lot_for(book.hedge_instrument))
    return decision_of(settings.kind, state, out)


def decision_of(name: str, state: HedgeState, orders: HedgeOrders, row: int = 0) -> HedgeDecision:
    """Row ``row`` of a policy's answer as the daemon's :class:`bot.domain.HedgeDecision`."""
    n = orders.amount.shape[0]
    delta = np.broadcast_to(np.asarray(state.delta, dtype=np.float64), (n,))
    target = np.broadcast_to(np.asarray(state.target, dtype=np.float64), (n,))
    return HedgeDecision(
        trade_amount=float(orders.amount[row]),
        trade_delta=float(orders.delta_change[row]),
        delta_before=float(delta[row]),
        target=float(target[row]),
        band_low=float(orders.band_low[row]),
        band_high=float(orders.band_high[row]),
        reason=Reason(int(orders.reason[row])).text,
        policy=name,
        warnings=orders.warnings,
    )


class VolSource:
    """The sigma the policy uses: the book's implied vol, or an EWMA/GARCH forecast from the
    index prices recorded in the ledger's greeks snapshots over ``lookback_hours``.

    With fewer than ``min_points`` recorded prices (a fresh ledger) it falls back to implied
    and says so once.
    """

    def __init__(self, settings: VolatilitySettings, ledger: Ledger) -> None:
        self._settings = settings
        self._ledger = ledger
        self._forecaster = make_forecaster(settings.source, lam=settings.ewma_lambda)
        self._windows: dict[str, RollingVol] = {}
        self._warned: set[str] = set()

    def sigma(self, currency: str, now: datetime, implied: float | None) -> float | None:
        s = self._settings
        if s.source == "implied":
            return implied
        window = self._windows.get(currency)
        if window is None:
            window = RollingVol(self._forecaster, s.lookback_hours * 3_600.0)
            self._windows[currency] = window
        # Only the snapshots recorded since the last cycle are read: the window is kept here.
        last = window.last_time
        if last is None:
            rows = self._ledger.index_prices(currency, now - timedelta(hours=s.lookback_hours))
        else:
            rows = self._ledger.index_prices(
                currency, datetime.fromtimestamp(last, tz=UTC), after=True
            )
        for when, price in rows:
            window.observe(when.timestamp(), price)
        if len(window) < s.min_points:
            if currency not in self._warned:
                self._warned.add(currency)
                log.info(
                    "volatility_fallback_to_implied",
                    currency=currency,
                    points=len(window),
                    needed=s.min_points,
                )
            return implied
        try:
            return window.forecast(implied=implied or DEFAULT_SIGMA)
        except DataError as exc:
            log.warning("volatility_forecast_failed", currency=currency, error=str(exc))
            return implied
