"""Whalley–Wilmott hedging: a band that widens with the book's gamma and the trading cost.

Whalley and Wilmott (1997, "An asymptotic analysis of an optimal hedging model for option
pricing with transaction costs", Mathematical Finance 7(3)) found the cost-optimal no-trade band
of a hedger with exponential utility and proportional costs, to leading order in the cost:

    H = (3/2 · e^(−r·tau) · λ · S · Γ² / γ_ra)^(1/3)

and that a trade should go **to the nearest edge**, not the target. Units, all per book:

* ``H`` and delta: coin (BTC, ETH);
* ``Γ``: the book's total gamma, coin of delta per USD of price (sign ignored: only Γ² enters);
* ``S``: price, USD per coin; ``λ``: proportional cost, a fraction of notional (5 bp = 0.0005);
* ``γ_ra``: absolute risk aversion over USD wealth, per USD;
* ``r``: continuously compounded rate per year, ``tau``: years to the book's nearest expiry.

Then ``λ·S·Γ²/γ_ra`` is coin³ and ``H`` is coin. A flat book (Γ = 0) or free trading (λ = 0)
gives H = 0, so the band is floored at ``min_band`` and, like every band, at one lot.

``method="zakamouline"`` uses Zakamouline's (2006) fitted band instead, which also reads the
volatility ``sigma`` (a forecast or the implied vol) and ``tau``:

    H0 = λ / (γ_ra · S · σ² · τ),   Hw = 1.12 · λ^0.31 · τ^0.05 · (e^(−rτ)/σ)^0.25 · (|Γ|/γ_ra)^0.5

with the band ±(H0 + Hw). Zakamouline also moves the target to the delta at a modified vol
σ_m² = σ²(1 − K); a policy sees the book's delta, not its options, so that shift is left out
and the target stays the configured one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from strategies.band import band_orders
from strategies.common import Array, HedgeOrders, HedgeState, LotSpec
from strategies.validate import state_arrays


@dataclass(frozen=True)
class GammaScaledParams:
    """Whalley–Wilmott inputs: ``risk_aversion`` γ_ra (1/USD), ``cost`` λ (fraction),
    ``min_band`` (coin), ``rate`` r (per year, 0 as on Deribit)."""

    risk_aversion: float
    cost: float
    min_band: float
    rate: float = 0.0
    method: str = "whalley_wilmott"

    def __post_init__(self) -> None:
        checks = (
            ("risk_aversion", self.risk_aversion > 0, "positive"),
            ("cost", self.cost >= 0, "non-negative"),
            ("min_band", self.min_band >= 0, "non-negative"),
            ("rate", True, "finite"),
        )
        for name, ok, what in checks:
            value = getattr(self, name)
            if not (math.isfinite(value) and ok):
                raise ValueError(f"gamma_scaled {name} must be {what} and finite, got {value!r}")
        if self.method not in METHODS:
            raise ValueError(f"gamma_scaled method must be one of {METHODS}, got {self.method!r}")


METHODS = ("whalley_wilmott", "zakamouline")


def whalley_wilmott_band(
    gamma: Array, price: Array, tau: Array, params: GammaScaledParams
) -> Array:
    """The unfloored Whalley–Wilmott half-width H in coin, per book (see module docstring)."""
    discount = np.exp(-params.rate * tau)
    cube = 1.5 * discount * params.cost * price * np.square(gamma) / params.risk_aversion
    return np.asarray(np.cbrt(cube), dtype=np.float64)


def zakamouline_band(
    gamma: Array, price: Array, sigma: Array, tau: Array, params: GammaScaledParams
) -> Array:
    """Zakamouline's half-width H0 + Hw in coin, per book (see module docstring)."""
    lam, ra = params.cost, params.risk_aversion
    h0 = lam / (ra * price * np.square(sigma) * tau)
    hw = (
        1.12
        * lam**0.31
        * np.power(tau, 0.05)
        * np.power(np.exp(-params.rate * tau) / sigma, 0.25)
        * np.sqrt(np.abs(gamma) / ra)
    )
    return np.asarray(h0 + hw, dtype=np.float64)


def gamma_scaled(state: HedgeState, params: GammaScaledParams, lot: LotSpec) -> HedgeOrders:
    """Per book: trade to the nearest edge of ``max(H, min_band, one lot)`` when outside it.

    Reasons ``IN_BAND``, ``OUTSIDE_BAND`` or ``BELOW_MIN_LOT``. A band narrower than one lot is
    widened and said in ``warnings``.
    """
    if params.method == "zakamouline":
        delta, target, gamma, price, sigma, tau = state_arrays(
            state, ("delta", "target", "gamma", "price", "sigma", "tau")
        )
        width = zakamouline_band(gamma, price, sigma, tau, params)
    else:
        delta, target, gamma, price, tau = state_arrays(
            state, ("delta", "target", "gamma", "price", "tau")
        )
        width = whalley_wilmott_band(gamma, price, tau, params)
    band = np.maximum(width, params.min_band)
    return band_orders("gamma_scaled", delta, target, price, band, lot, to_edge=True)
