"""Deribit's private account methods on the paper venue: positions and account summaries.

Balances, equity and ``delta_total`` are the paper venue's own figures; this module adds what a
Deribit summary shows beside them, from the same positions and marks: each position's floating
P&L and greeks (options: size × the ticker's Black-76 greeks, delta not premium-adjusted, as in
Deribit's ``options_delta``), and their sums. A perpetual the account has traded stays listed at
size 0 with ``direction: "zero"`` once flat, as Deribit lists it.
"""

from __future__ import annotations

from typing import Any

from bot.config import RateLimitSettings
from bot.sim import deribit_json as dj
from bot.sim.handler import CallInfo, Handler
from bot.sim.orders import OrderDirectory
from bot.sim.params import Params, currencies_param, currency_param
from bot.sim.public_data import PublicData
from bot.sim.ticker_greeks import ticker_greeks
from bot.venues.base import Venue
from bot.venues.paper.accounting import carried_value

Json = dict[str, Any]


def limits_json(limits: RateLimitSettings) -> Json:
    """The ``limits`` object of an account summary: the server's own rate limits."""
    return {
        "limits_per_currency": False,
        "matching_engine": {"rate": limits.matching_per_second, "burst": limits.matching_burst},
        "non_matching_engine": {"rate": limits.other_per_second, "burst": limits.other_burst},
    }


class AccountApi:
    """Handlers of ``get_positions``, ``get_position`` and the account summaries."""

    def __init__(
        self,
        public: PublicData,
        venue: Venue,
        directory: OrderDirectory,
        limits: RateLimitSettings,
    ) -> None:
        self._public = public
        self._market = public.market
        self._venue = venue
        self._dir = directory
        self._limits = limits
        self._served = public.market.currencies

    def handlers(self) -> dict[str, Handler]:
        return {
            "get_positions": self._positions,
            "get_position": self._position,
            "get_account_summary": self._summary,
            "get_account_summaries": self._summaries,
        }

    async def positions(self, currency: str) -> list[Json]:
        """Every open position of ``currency`` (and the traded perpetual, even when flat)."""
        held = {p.instrument.name: p for p in await self._venue.positions(currency)}
        marks = {m.instrument_name: m for m in self._market.marks(currency)}
        now = self._market.now()
        rows = []
        for name, position in sorted(held.items()):
            instrument = position.instrument
            mark = marks[name]
            value = carried_value(
                instrument, position.size, position.average_price, mark.mark_price
            )
            if instrument.is_option:
                floating = value - position.size * position.average_price
                greeks = ticker_greeks(instrument, mark, now)
            else:
                floating, greeks = value, None
            rows.append(
                dj.position_json(
                    instrument, position.size, position.average_price, mark, floating, greeks
                )
            )
        traded = {t.fill.instrument_name for t in self._dir.trades(currency)}
        for name in sorted(traded - set(held)):
            instrument = self._market.instrument(name)
            if not instrument.is_option and name in marks:
                rows.append(dj.position_json(instrument, 0.0, 0.0, marks[name], 0.0, None))
        return rows

    async def summary(self, currency: str) -> Json:
        account = await self._venue.account(currency)
        rows = await self.positions(currency)
        options_value = sum(r["size"] * r["mark_price"] for r in rows if r["kind"] == "option")
        return dj.account_summary_json(account, rows, options_value, limits_json(self._limits))

    async def _positions(self, p: Params, _: CallInfo) -> Any:
        kind = p.choice("kind", ("future", "option", "spot", "future_combo", "option_combo"), None)
        rows = []
        for currency in currencies_param(p, self._served):
            await self._dir.refresh(currency)
            rows.extend(await self.positions(currency))
        return [r for r in rows if kind in (None, r["kind"])]

    async def _position(self, p: Params, _: CallInfo) -> Any:
        name = p.text("instrument_name")
        instrument = self._market.instrument(name)
        for row in await self.positions(instrument.currency):
            if row["instrument_name"] == name:
                return row
        mark = self._public.mark(instrument)
        return dj.position_json(instrument, 0.0, 0.0, mark, 0.0, None)

    async def _summary(self, p: Params, _: CallInfo) -> Any:
        return await self.summary(currency_param(p, self._served))

    async def _summaries(self, _p: Params, _: CallInfo) -> Any:
        return {"summaries": [await self.summary(c) for c in self._served]}
