"""The simulated market: a seeded index per currency, a perpetual around it and listed options.

Everything is a function of the seed and the clock's time, so the demo, the tests and the
simulated Deribit server see one market however they query it. Deribit naming and units: option
prices in coin, perpetual prices and amounts in USD, IV as a decimal in ``Mark.mark_iv``.

Simplifications, on purpose: r = 0 and every option's forward (``underlying_price``) is the
index; the perpetual trades at index × (1 + basis) with no funding; the books are regenerated
from the marks at each query, so liquidity taken by one order is back for the next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from bot.clock import Clock
from bot.config import CurrencyFacts, MarketSettings
from bot.domain import (
    DataError,
    Instrument,
    InstrumentKind,
    Mark,
    OptionType,
    Quote,
    utc,
)
from bot.greeks import black76
from bot.units import SECONDS_PER_YEAR, SETTLEMENT_WINDOW
from bot.venues.paper import instruments as names
from bot.venues.paper.matching import (
    Level,
    round_down,
    round_down_all,
    round_up,
    round_up_all,
    snap,
)
from bot.venues.paper.path import IndexPath
from bot.venues.paper.smile import smile_iv

BOOK_LEVELS = 10
OPTION_HALF_SPREAD = 0.02  # option bid/ask: mark ∓ 2% of mark, at least one tick
MIN_OPTION_MARK = 1e-8  # coin; a worthless option still has a positive, usable mark
_US = timedelta(microseconds=1)


def _years_left(option: Instrument, now: datetime) -> float:
    if option.expiry is None:
        raise DataError(f"{option.name} has no expiry")
    return ((option.expiry - now) // _US) / 1e6 / SECONDS_PER_YEAR


class MarketSource(Protocol):
    """Public market data a paper venue needs: the simulator now, a real venue's data later."""

    @property
    def currencies(self) -> tuple[str, ...]: ...

    def now(self) -> datetime: ...

    def index(self, currency: str) -> float: ...

    def instruments(self, currency: str) -> list[Instrument]: ...

    def instrument(self, name: str) -> Instrument:
        """Any instrument listed now or before (expired ones too); DataError when unknown."""
        ...

    def marks(self, currency: str) -> list[Mark]: ...

    def quote(self, name: str) -> Quote: ...

    def order_book(self, name: str) -> tuple[list[Level], list[Level]]: ...

    def settlement_price(self, currency: str, expiry: datetime) -> float:
        """The delivery price of an expiry that has passed; DataError before it."""
        ...

    def starting_equity(self, currency: str) -> float:
        """Coin a fresh paper account starts with."""
        ...

    def starting_book(self, currency: str) -> list[tuple[Instrument, float]]:
        """Option legs (signed sizes) a fresh paper account starts with; may be empty."""
        ...


class SimMarket:
    """The embedded default market. See the module docstring for what it models."""

    def __init__(
        self,
        settings: MarketSettings,
        currencies: Sequence[str],
        clock: Clock,
        facts: Mapping[str, CurrencyFacts],
        start: datetime | None = None,
    ) -> None:
        missing = [c for c in currencies if c not in facts or c not in settings.spot]
        if missing or not currencies:
            raise DataError(f"no venue facts or start spot for currencies {missing}")
        self._settings = settings
        self._clock = clock
        self._currencies = tuple(currencies)
        self._facts = {c: facts[c] for c in currencies}
        self._start = utc(start) if start is not None else utc(clock.now())
        self._step_us = max(1, round(settings.step_seconds * 1e6))
        self._paths = {
            c: IndexPath(
                seed=settings.seed,
                currency=c,
                spot=settings.spot[c],
                dt_years=settings.step_seconds / SECONDS_PER_YEAR,
                volatility=settings.volatility,
                drift=settings.drift,
                jump_intensity=settings.jump_intensity,
                jump_mean=settings.jump_mean,
                jump_std=settings.jump_std,
            )
            for c in currencies
        }
        self._perps = {self._facts[c].perpetual: c for c in currencies}
        self._grids: dict[tuple[str, datetime], tuple[float, ...]] = {}
        self._cache: dict[str, Instrument] = {}
        self._found: dict[str, Instrument] = {}  # once listed, a name stays known
        self._marks: dict[str, tuple[datetime, list[Mark]]] = {}  # the last instant's marks
        # The listed options change only when an expiry is listed or expires: per currency,
        # the last listing's expiries and its instruments (names are not formatted again).
        self._listed: dict[str, tuple[tuple[datetime, ...], list[Instrument]]] = {}

    # --- time and index -------------------------------------------------------------------

    @property
    def currencies(self) -> tuple[str, ...]:
        return self._currencies

    @property
    def start(self) -> datetime:
        return self._start

    def now(self) -> datetime:
        return utc(self._clock.now())

    def step_at(self, ts: datetime) -> int:
        """The grid step holding ``ts``; DataError before the market's start."""
        elapsed = (utc(ts) - self._start) // _US
        if elapsed < 0:
            raise DataError(f"{ts.isoformat()} is before the market's start")
        return int(elapsed // self._step_us)

    def _path(self, currency: str) -> IndexPath:
        try:
            return self._paths[currency]
        except KeyError:
            raise DataError(f"unknown currency {currency!r}") from None

    def index_at(self, currency: str, ts: datetime) -> float:
        return self._path(currency).level(self.step_at(ts))

    def index(self, currency: str) -> float:
        return self.index_at(currency, self.now())

    def index_steps(self, currency: str, first: int, count: int) -> np.ndarray:
        """The index at grid steps ``first`` … ``first + count − 1`` (for studies and tests)."""
        return self._path(currency).levels(first, count)

    def perp_mark(self, currency: str) -> float:
        return self.index(currency) * (1 + self._settings.perp_basis_bps / 1e4)

    # --- listing --------------------------------------------------------------------------

    def _perp(self, currency: str) -> Instrument:
        return self._facts[currency].perpetual_instrument(currency)

    def listed_from(self, expiry: datetime) -> datetime:
        return max(names.listing_time(expiry), self._start)

    def strikes(self, currency: str, expiry: datetime) -> tuple[float, ...]:
        """The strike grid of ``expiry``, centred on the index when it was first listed."""
        key = (currency, expiry)
        if key not in self._grids:
            spot = self.index_at(currency, self.listed_from(expiry))
            self._grids[key] = names.strike_grid(spot, names.grid_rule(expiry))
        return self._grids[key]

    def _option(
        self, currency: str, expiry: datetime, strike: float, kind: OptionType
    ) -> Instrument:
        name = names.option_name(currency, expiry, strike, kind)
        found = self._cache.get(name)
        if found is None:
            facts = self._facts[currency]
            found = Instrument(
                name=name,
                currency=currency,
                kind=InstrumentKind.OPTION,
                contract_size=1.0,
                min_amount=facts.option_min_amount,
                amount_step=facts.option_min_amount,
                tick_size=facts.option_tick_size,
                expiry=expiry,
                strike=strike,
                option_type=kind,
            )
            self._cache[name] = found
        return found

    def _options(self, currency: str, now: datetime) -> list[Instrument]:
        expiries = tuple(names.listed_expiries(now))
        cached = self._listed.get(currency)
        if cached is not None and cached[0] == expiries:
            return list(cached[1])
        options = [
            self._option(currency, expiry, strike, kind)
            for expiry in expiries
            for strike in self.strikes(currency, expiry)
            for kind in (OptionType.CALL, OptionType.PUT)
        ]
        self._listed[currency] = (expiries, options)
        return list(options)

    def instruments(self, currency: str) -> list[Instrument]:
        """The perpetual, then the options listed now by expiry, strike, call before put."""
        self._path(currency)
        return [self._perp(currency), *self._options(currency, self.now())]

    def instrument(self, name: str) -> Instrument:
        if name in self._perps:
            return self._perp(self._perps[name])
        known = self._found.get(name)
        if known is not None:
            return known
        found = self._lookup(name)
        self._found[name] = found
        return found

    def _lookup(self, name: str) -> Instrument:
        try:
            parsed = names.parse_option_name(name)
        except DataError:
            raise DataError(f"unknown instrument {name!r}") from None
        if parsed.currency not in self._paths:
            raise DataError(f"unknown instrument {name!r}: currency not simulated")
        if parsed.expiry <= self._start or self.listed_from(parsed.expiry) > self.now():
            raise DataError(f"unknown instrument {name!r}: not listed")
        for strike in self.strikes(parsed.currency, parsed.expiry):
            if math.isclose(strike, parsed.strike, rel_tol=1e-12):
                return self._option(parsed.currency, parsed.expiry, strike, parsed.option_type)
        raise DataError(f"unknown instrument {name!r}: strike not listed")

    def _live(self, name: str) -> Instrument:
        instrument = self.instrument(name)
        if instrument.expiry is not None and instrument.expiry <= self.now():
            raise DataError(f"{name} expired at {instrument.expiry.isoformat()}")
        return instrument

    # --- marks and books ------------------------------------------------------------------

    def _option_marks(
        self, options: Sequence[Instrument], now: datetime, forward: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mark in coin, iv) of ``options``, all live at ``now``."""
        strike = np.array([o.strike for o in options], dtype=np.float64)
        tau = np.array([_years_left(o, now) for o in options], dtype=np.float64)
        is_call = np.array([o.option_type is OptionType.CALL for o in options])
        s = self._settings
        iv = smile_iv(forward, strike, s.volatility, s.smile_skew, s.smile_curvature)
        coin = black76(forward, strike, tau, iv, is_call).price_coin
        return np.maximum(coin, MIN_OPTION_MARK), iv

    def _option_top(self, mark: float, tick: float) -> tuple[float, float, float]:
        """(best bid, best ask, gap between levels) of an option around its mark."""
        half = max(tick, OPTION_HALF_SPREAD * mark)
        return round_down(mark - half, tick), round_up(mark + half, tick), round_up(half, tick)

    def marks(self, currency: str) -> list[Mark]:
        """Every live instrument of ``currency``: the perpetual (USD) and the options (coin).

        Marks are a function of the instant: on lockstep time a cycle's reads all come at one
        instant, so the last instant's list is kept."""
        now = self.now()
        cached = self._marks.get(currency)
        if cached is not None and cached[0] == now:
            return list(cached[1])
        out = self._compute_marks(currency, now)
        self._marks[currency] = (now, out)
        return list(out)

    def _compute_marks(self, currency: str, now: datetime) -> list[Mark]:
        index = self.index(currency)
        perp = self._perp(currency)
        bids, asks = self._perp_book(currency)
        out = [
            Mark(
                instrument_name=perp.name,
                mark_price=self.perp_mark(currency),
                underlying_price=index,
                index_price=index,
                timestamp=now,
                bid=bids[0][0],
                ask=asks[0][0],
            )
        ]
        options = self._options(currency, now)
        coin, iv = self._option_marks(options, now, index)
        # _option_top over the arrays at once: the same floats, without ~600 calls per look.
        ticks = np.asarray([o.tick_size for o in options], dtype=np.float64)
        half = np.maximum(ticks, OPTION_HALF_SPREAD * coin)
        tops = zip(
            round_down_all(coin - half, ticks), round_up_all(coin + half, ticks), strict=True
        )
        for option, mark, vol, (bid, ask) in zip(
            options, coin.tolist(), iv.tolist(), tops, strict=True
        ):
            out.append(
                Mark(
                    instrument_name=option.name,
                    mark_price=mark,
                    underlying_price=index,
                    index_price=index,
                    timestamp=now,
                    mark_iv=vol,
                    bid=bid if bid > 0 else None,
                    ask=ask,
                )
            )
        return out

    def _ladder(self, best: float, gap: float, amount: float, sign: int) -> list[Level]:
        prices = (round(best + sign * i * gap, 12) for i in range(BOOK_LEVELS))
        return [(p, amount) for p in prices if p > 0]

    def _perp_book(self, currency: str) -> tuple[list[Level], list[Level]]:
        facts = self._facts[currency]
        mark = self.perp_mark(currency)
        half = self._settings.spread_bps / 1e4
        tick = facts.perp_tick_size
        gap = max(tick, round_up(mark * half, tick))
        amount = max(
            facts.perp_amount_step, round_down(self._settings.depth_usd, facts.perp_amount_step)
        )
        best_bid = round_down(mark * (1 - half), tick)
        best_ask = max(round_up(mark * (1 + half), tick), best_bid + tick)
        return self._ladder(best_bid, gap, amount, -1), self._ladder(best_ask, gap, amount, 1)

    def order_book(self, name: str) -> tuple[list[Level], list[Level]]:
        """(bids, asks), best first, ``BOOK_LEVELS`` each: price and amount per level."""
        instrument = self._live(name)
        if not instrument.is_option:
            return self._perp_book(instrument.currency)
        now = self.now()
        index = self.index(instrument.currency)
        coin, _ = self._option_marks([instrument], now, index)
        step = instrument.amount_step
        amount = max(step, round_down(self._settings.depth_usd / index, step))
        bid, ask, gap = self._option_top(float(coin[0]), instrument.tick_size)
        return self._ladder(bid, gap, amount, -1), self._ladder(ask, gap, amount, 1)

    def quote(self, name: str) -> Quote:
        instrument = self._live(name)
        bids, asks = self.order_book(name)
        if instrument.is_option:
            coin, _ = self._option_marks([instrument], self.now(), self.index(instrument.currency))
            mark = float(coin[0])
        else:
            mark = self.perp_mark(instrument.currency)
        return Quote(
            instrument_name=name,
            bid=bids[0][0] if bids else 0.0,
            ask=asks[0][0],
            mark=mark,
            index_price=self.index(instrument.currency),
            timestamp=self.now(),
            bid_size=bids[0][1] if bids else 0.0,
            ask_size=asks[0][1],
        )

    # --- settlement and the starting book ----------------------------------------------

    def settlement_price(self, currency: str, expiry: datetime) -> float:
        """Time-weighted average of the index over the 30 minutes before ``expiry``."""
        expiry = utc(expiry)
        if expiry > self.now():
            raise DataError(f"{currency} {expiry.isoformat()} has not expired yet")
        end = (expiry - self._start) // _US
        if end <= 0:
            raise DataError(f"{expiry.isoformat()} expired before the market started")
        begin = max(0, (expiry - SETTLEMENT_WINDOW - self._start) // _US)
        first, last = begin // self._step_us, (end - 1) // self._step_us
        steps = np.arange(first, last + 1)
        lo = np.maximum(begin, steps * self._step_us)
        hi = np.minimum(end, (steps + 1) * self._step_us)
        levels = self._path(currency).levels(first, last - first + 1)
        return float(np.sum(levels * (hi - lo)) / np.sum(hi - lo))

    def starting_equity(self, currency: str) -> float:
        """``MarketSettings.equity`` of ``currency`` (0 when the settings name none)."""
        self._path(currency)
        return float(self._settings.equity.get(currency, 0.0))

    def starting_book(self, currency: str) -> list[tuple[Instrument, float]]:
        """The settings' option legs mapped to the nearest option listed now.

        Each leg goes to the listed expiry nearest to now + ``expiry_days`` and that expiry's
        strike nearest to ``moneyness`` × the index now. Leg sizes are in BTC-equivalents:
        another currency's legs are scaled by spot_BTC / spot_currency of the settings' start
        spots and rounded to the option amount step; legs on one instrument add up.
        """
        now = self.now()
        index = self.index(currency)
        spots = self._settings.spot
        scale = spots["BTC"] / spots[currency] if "BTC" in spots else 1.0
        expiries = names.listed_expiries(now)
        sizes: dict[str, float] = {}
        chosen: dict[str, Instrument] = {}
        for leg in self._settings.book:
            target = now + timedelta(days=leg.expiry_days)
            expiry = min(expiries, key=lambda e: (abs((e - target) // _US), e))
            grid = self.strikes(currency, expiry)
            strike = min(grid, key=lambda k: (abs(k - leg.moneyness * index), k))
            option = self._option(currency, expiry, strike, OptionType(leg.option_type))
            chosen[option.name] = option
            total = sizes.get(option.name, 0.0) + leg.size * scale
            sizes[option.name] = total
        return [
            (chosen[name], snap(total, chosen[name].amount_step))
            for name, total in sizes.items()
            if snap(total, chosen[name].amount_step) != 0
        ]
