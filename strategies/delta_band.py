"""Fixed band hedging: trade only when delta strays more than ``band`` coin from its target.

The simplest cost-aware policy: a book inside the band costs nothing. ``rebalance_to="target"``
re-centres the book (fewer, larger trades); ``"edge"`` moves it just back inside the band
(more, smaller trades, the cheapest in a trending market).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from strategies.band import band_orders
from strategies.common import HedgeOrders, HedgeState, LotSpec
from strategies.validate import state_arrays


@dataclass(frozen=True)
class DeltaBandParams:
    """``band``: coin delta tolerated either side of the target (half-width);
    ``rebalance_to``: where a trade takes the book."""

    band: float
    rebalance_to: Literal["target", "edge"] = "target"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.band) and self.band > 0):
            raise ValueError(f"delta_band band must be positive and finite, got {self.band!r}")
        if self.rebalance_to not in ("target", "edge"):
            raise ValueError(
                f"delta_band rebalance_to must be 'target' or 'edge', got {self.rebalance_to!r}"
            )


def delta_band(state: HedgeState, params: DeltaBandParams, lot: LotSpec) -> HedgeOrders:
    """Per book: ``OUTSIDE_BAND`` trade when ``|delta − target| > band``, else ``IN_BAND``.

    A band narrower than one lot at the book's price is widened to one lot and said in
    ``warnings`` (see :mod:`strategies.band`).
    """
    delta, target, price = state_arrays(state, ("delta", "target", "price"))
    band = np.full_like(delta, params.band)
    return band_orders(
        "delta_band", delta, target, price, band, lot, to_edge=params.rebalance_to == "edge"
    )
