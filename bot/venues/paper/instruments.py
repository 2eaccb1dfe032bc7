"""Deribit-style option names, the expiry calendar and strike grids of the simulated market.

The listing is a pure function of time and of the index when each expiry is first listed, so it
is the same however the market is queried:

- expiries are at 08:00 UTC: the next 3 days (dailies), every Friday within 28 days (weeklies)
  and the last Friday of each of the next 3 months (monthlies);
- an expiry is listed from the first moment one of those rules includes it until it expires;
- its strikes are multiples of a "nice" spacing (1, 2, 2.5 or 5 × 10^k) around the index at that
  moment, as on Deribit: dailies 1% apart within ±8%, weeklies 1% within ±16%, monthlies 2% from
  50% to 170% of spot (checked against a real BTC/ETH chain of January 2026).
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.domain import DataError, OptionType, utc

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
EXPIRY_HOUR = 8
DAILY_COUNT = 3
WEEKLY_DAYS = 28
MONTHLY_COUNT = 3
FRIDAY = 4

_NAME = re.compile(r"^([A-Z0-9_]+)-(\d{1,2})([A-Z]{3})(\d{2})-([0-9d]+)-([CP])$")


@dataclass(frozen=True)
class GridRule:
    """Strike spacing (fraction of spot, rounded to a nice number) and range (× spot)."""

    spacing: float
    low: float
    high: float


DAILY = GridRule(spacing=0.01, low=0.92, high=1.08)
WEEKLY = GridRule(spacing=0.01, low=0.84, high=1.16)
MONTHLY = GridRule(spacing=0.02, low=0.50, high=1.70)


@dataclass(frozen=True)
class OptionName:
    """The parts of an option name such as ``BTC-27MAR26-90000-C``."""

    currency: str
    expiry: datetime
    strike: float
    option_type: OptionType


def format_strike(strike: float) -> str:
    """Deribit writes integral strikes plainly and a decimal point as ``d`` (``0d625``)."""
    if not math.isfinite(strike) or strike <= 0:
        raise DataError(f"strike must be positive, got {strike!r}")
    if float(strike).is_integer():
        return str(int(strike))
    return f"{strike:.10f}".rstrip("0").replace(".", "d")


def format_expiry(expiry: datetime) -> str:
    """``27MAR26``: day without a leading zero, month, two-digit year."""
    return f"{expiry.day}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def option_name(currency: str, expiry: datetime, strike: float, option_type: OptionType) -> str:
    suffix = "C" if option_type is OptionType.CALL else "P"
    return f"{currency}-{format_expiry(expiry)}-{format_strike(strike)}-{suffix}"


def parse_option_name(name: str) -> OptionName:
    """Parse a Deribit option name; raises DataError when it is not one."""
    match = _NAME.match(name)
    if match is None:
        raise DataError(f"not an option name: {name!r}")
    currency, day, month, year, strike_text, kind = match.groups()
    if month not in MONTHS:
        raise DataError(f"unknown month in {name!r}")
    try:
        expiry = datetime(
            2000 + int(year), MONTHS.index(month) + 1, int(day), EXPIRY_HOUR, tzinfo=UTC
        )
        strike = float(strike_text.replace("d", "."))
    except ValueError as exc:
        raise DataError(f"bad date or strike in {name!r}: {exc}") from None
    option_type = OptionType.CALL if kind == "C" else OptionType.PUT
    return OptionName(currency, expiry, strike, option_type)


def currency_of(instrument_name: str) -> str:
    """The currency an instrument name starts with (``BTC-PERPETUAL`` → ``BTC``)."""
    return instrument_name.split("-", 1)[0]


def _at_expiry_hour(day: datetime) -> datetime:
    return datetime(day.year, day.month, day.day, EXPIRY_HOUR, tzinfo=UTC)


def last_friday(year: int, month: int) -> datetime:
    """08:00 UTC of the last Friday of ``month``."""
    last_day = calendar.monthrange(year, month)[1]
    day = datetime(year, month, last_day, EXPIRY_HOUR, tzinfo=UTC)
    return day - timedelta(days=(day.weekday() - FRIDAY) % 7)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def is_expiry_instant(ts: datetime) -> bool:
    return (ts.hour, ts.minute, ts.second, ts.microsecond) == (EXPIRY_HOUR, 0, 0, 0)


def is_monthly(expiry: datetime) -> bool:
    return is_expiry_instant(expiry) and expiry == last_friday(expiry.year, expiry.month)


def listed_expiries(now: datetime) -> list[datetime]:
    """Expiries listed at ``now``, ascending."""
    now = utc(now)
    first = _at_expiry_hour(now)
    if first <= now:
        first += timedelta(days=1)
    found = {first + timedelta(days=i) for i in range(DAILY_COUNT)}
    friday = first + timedelta(days=(FRIDAY - first.weekday()) % 7)
    while friday <= now + timedelta(days=WEEKLY_DAYS):
        found.add(friday)
        friday += timedelta(days=7)
    year, month = now.year, now.month
    monthlies: list[datetime] = []
    while len(monthlies) < MONTHLY_COUNT:
        candidate = last_friday(year, month)
        if candidate > now:
            monthlies.append(candidate)
        year, month = _add_months(year, month, 1)
    found.update(monthlies)
    return sorted(found)


def listing_time(expiry: datetime) -> datetime:
    """The first instant at which :func:`listed_expiries` includes ``expiry``.

    Raises DataError for an instant that is never an expiry (not 08:00 UTC).
    """
    expiry = utc(expiry)
    if not is_expiry_instant(expiry):
        raise DataError(f"{expiry.isoformat()} is not an 08:00 UTC expiry")
    candidates = [expiry - timedelta(days=DAILY_COUNT)]
    if expiry.weekday() == FRIDAY:
        candidates.append(expiry - timedelta(days=WEEKLY_DAYS))
    if is_monthly(expiry):
        year, month = _add_months(expiry.year, expiry.month, -MONTHLY_COUNT)
        candidates.append(last_friday(year, month))
    return min(candidates)


def grid_rule(expiry: datetime) -> GridRule:
    if is_monthly(expiry):
        return MONTHLY
    if expiry.weekday() == FRIDAY:
        return WEEKLY
    return DAILY


def nice_step(target: float) -> float:
    """The number of the form {1, 2, 2.5, 5} × 10^k nearest to ``target`` in log terms."""
    if not math.isfinite(target) or target <= 0:
        raise DataError(f"strike spacing must be positive, got {target!r}")
    exponent = math.floor(math.log10(target))
    candidates = [
        m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 2.5, 5)
    ]
    return min(candidates, key=lambda c: abs(math.log(c / target)))


def strike_grid(spot: float, rule: GridRule) -> tuple[float, ...]:
    """Strikes that are multiples of the rule's nice spacing within its range around ``spot``."""
    step = nice_step(spot * rule.spacing)
    low = math.ceil(spot * rule.low / step)
    high = math.floor(spot * rule.high / step)
    return tuple(round(k * step, 10) for k in range(max(low, 1), high + 1))
