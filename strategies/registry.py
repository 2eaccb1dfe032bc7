"""The policies by name, so settings (``policy.kind``) and the backtest pick one the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strategies.common import HedgeOrders, HedgeState, LotSpec
from strategies.delta_band import DeltaBandParams, delta_band
from strategies.gamma_scaled import GammaScaledParams, gamma_scaled
from strategies.time_band import TimeBandParams, time_band

PolicyParams = TimeBandParams | DeltaBandParams | GammaScaledParams
Policy = Callable[[HedgeState, Any, LotSpec], HedgeOrders]

POLICIES: dict[str, tuple[Policy, type[PolicyParams]]] = {
    "time_band": (time_band, TimeBandParams),
    "delta_band": (delta_band, DeltaBandParams),
    "gamma_scaled": (gamma_scaled, GammaScaledParams),
}


def _entry(name: str) -> tuple[Policy, type[PolicyParams]]:
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown hedging policy {name!r}; known: {known}") from None


def make_params(name: str, values: Mapping[str, Any]) -> PolicyParams:
    """Build policy ``name``'s params from a mapping, e.g. a settings section's ``model_dump()``."""
    return _entry(name)[1](**values)


def decide(name: str, state: HedgeState, params: PolicyParams, lot: LotSpec) -> HedgeOrders:
    """Run policy ``name``; ``params`` must be that policy's params type."""
    policy, params_type = _entry(name)
    if not isinstance(params, params_type):
        raise TypeError(
            f"policy {name!r} takes {params_type.__name__}, got {type(params).__name__}"
        )
    return policy(state, params, lot)
