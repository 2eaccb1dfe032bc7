"""What every band policy does once it knows its band: the no-trade test, the trade, the lots.

A band is a half-width in coin around the target. It is never narrower than one lot of the hedge
instrument: with a narrower band, a trade rounded to whole lots can land beyond the band on the
other side of the target, and the next cycle trades back (ping-pong). With at least one lot:

* to the target, nearest-lot rounding leaves the book within half a lot of it, inside the band;
* to the edge, outward rounding leaves it on the edge or within one lot inside it, so between
  the target and the edge.

So when delta does not move, a book that just traded never trades again. A widened band is said
in ``HedgeOrders.warnings`` so the daemon logs it.
"""

from __future__ import annotations

import numpy as np

from strategies.common import Array, HedgeOrders, LotSpec, Reason
from strategies.lots import TOLERANCE_LOTS, round_to_lots

# Plain ints: numpy converts an IntEnum member far more slowly, and one live book pays per call.
_IN_BAND, _OUTSIDE_BAND, _BELOW_MIN_LOT = (
    int(Reason.IN_BAND),
    int(Reason.OUTSIDE_BAND),
    int(Reason.BELOW_MIN_LOT),
)


def widened_warning(
    policy: str, band: Array, lot_coin: Array, price: Array, lot: LotSpec
) -> tuple[str, ...]:
    """One sentence when any book's band is narrower than one lot, naming the first such book."""
    narrow = band < lot_coin
    count = int(np.count_nonzero(narrow))
    if count == 0:
        return ()
    row = int(np.flatnonzero(narrow)[0])
    unit = "USD" if lot.inverse else "coin"
    where = "" if band.size == 1 else f" on {count} of {band.size} books (first: row {row})"
    return (
        f"{policy}: band {band[row]:.6g} coin is narrower than one lot of the hedge instrument"
        f" ({lot.step:g} {unit} = {lot_coin[row]:.6g} coin at {price[row]:,.2f} USD), so it"
        f" was widened to {lot_coin[row]:.6g} coin to prevent ping-pong{where}",
    )


def band_orders(
    policy: str,
    delta: Array,
    target: Array,
    price: Array,
    band: Array,
    lot: LotSpec,
    *,
    to_edge: bool,
) -> HedgeOrders:
    """Trade the books whose ``|delta − target|`` exceeds ``band`` (coin, half-width).

    ``to_edge`` trades to the nearest band edge, otherwise to the target. All arrays share one
    shape ``(n,)`` and are already checked finite (prices positive, bands non-negative).
    """
    lot_coin = lot.coin_per_step(price)
    width = np.maximum(band, lot_coin)
    low, high = target - width, target + width
    gap = delta - target
    outside = np.abs(gap) > width + TOLERANCE_LOTS * lot_coin
    aim = np.where(gap > 0, high, low) if to_edge else target
    wanted = np.where(outside, aim - delta, 0.0)
    rounded = round_to_lots(wanted, price, lot, outward=to_edge)
    reason = np.where(
        outside, np.where(rounded.below_min, _BELOW_MIN_LOT, _OUTSIDE_BAND), _IN_BAND
    ).astype(np.int8)
    return HedgeOrders(
        amount=rounded.amount,
        delta_change=rounded.delta_change,
        band_low=low,
        band_high=high,
        reason=reason,
        warnings=widened_warning(policy, band, lot_coin, price, lot),
    )
