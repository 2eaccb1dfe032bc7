"""Hedging policies: pure functions of per-book arrays, the same for one live book and 1e5 paths."""

from strategies.common import Array, HedgeOrders, HedgeState, LotSpec, Reason
from strategies.delta_band import DeltaBandParams, delta_band
from strategies.gamma_scaled import GammaScaledParams, gamma_scaled, whalley_wilmott_band
from strategies.lots import Rounded, round_half_away, round_to_lots
from strategies.registry import (
    POLICIES,
    Policy,
    PolicyParams,
    decide,
    make_params,
)
from strategies.time_band import TimeBandParams, time_band
from strategies.validate import state_arrays

__all__ = [
    "POLICIES",
    "Array",
    "DeltaBandParams",
    "GammaScaledParams",
    "HedgeOrders",
    "HedgeState",
    "LotSpec",
    "Policy",
    "PolicyParams",
    "Reason",
    "Rounded",
    "TimeBandParams",
    "decide",
    "delta_band",
    "gamma_scaled",
    "make_params",
    "round_half_away",
    "round_to_lots",
    "state_arrays",
    "time_band",
    "whalley_wilmott_band",
]
