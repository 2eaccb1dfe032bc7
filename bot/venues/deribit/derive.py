"""Completing book summaries that leave out ``mark_iv`` or ``underlying_price``.

Deribit documents both fields of ``public/get_book_summary_by_currency`` as optional, and real
answers (the documentation's own example, recorded mainnet rows of 2022) carry only
``mark_price``. Without them an option has no Greeks, and every cycle would skip with "no mark
for held instrument", forever. So they are derived, and each mark says how:

- the forward: the venue's ``underlying_price``; else the mark of the future named by
  ``underlying_index`` (Deribit names the expiry's future there, ``SYN.`` when synthetic) or of
  the future expiring with the option; else the index (``estimated_delivery_price``), which
  ignores the basis and is said so (``forward_source="index"``);
- the IV: the venue's ``mark_iv``; else the Black-76 vol that reprices the mark on that forward
  (:func:`bot.implied.implied_vol`, all options of the answer solved at once).

A row whose IV cannot be solved (a mark below intrinsic value) keeps no IV and is skipped with a
warning naming it, like any unusable row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from bot.greeks import deribit_expiry, year_fraction
from bot.implied import implied_vol
from bot.venues.deribit.mapping import FieldError, Row, number

_MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_CODES)}


@dataclass(frozen=True)
class OptionName:
    currency: str
    expiry: datetime
    strike: float
    is_call: bool


def parse_option_name(name: str) -> OptionName | None:
    """``BTC-24JUN22-30000-C`` (Deribit's option naming); None for anything else."""
    parts = name.split("-")
    if len(parts) != 4 or parts[3] not in ("C", "P"):
        return None
    expiry = parse_expiry(parts[1])
    try:
        strike = float(parts[2].replace("d", "."))
    except ValueError:
        return None
    if expiry is None or not strike > 0:
        return None
    return OptionName(parts[0], expiry, strike, parts[3] == "C")


def parse_expiry(code: str) -> datetime | None:
    """``24JUN22`` or ``7JUN22`` to Deribit's 08:00 UTC expiry instant."""
    day, month, year = code[:-5], code[-5:-2], code[-2:]
    if not (day.isdigit() and year.isdigit()) or month not in _MONTHS:
        return None
    try:
        return deribit_expiry(date(2000 + int(year), _MONTHS[month], int(day)))
    except ValueError:
        return None


def _future_marks(rows: Sequence[Row]) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in rows:
        name = str(row.get("instrument_name") or "")
        if name.count("-") == 1 and row.get("mark_price") is not None:
            try:
                out[name] = number(row, "mark_price", positive=True)
            except FieldError:
                continue
    return out


def _forward(row: Row, option: OptionName, futures: Mapping[str, float]) -> tuple[float, str]:
    if row.get("underlying_price") is not None:
        return number(row, "underlying_price", positive=True), "venue"
    underlying = str(row.get("underlying_index") or "").removeprefix("SYN.")
    code = option.expiry.strftime("%d%b%y").upper().lstrip("0")
    for future in (underlying, f"{option.currency}-{code}"):
        if future in futures:
            return futures[future], "future"
    key = "index_price" if row.get("index_price") is not None else "estimated_delivery_price"
    return number(row, key, positive=True), "index"


@dataclass(frozen=True)
class Completed:
    """Option rows with ``underlying_price`` and ``mark_iv`` filled in, and where each came
    from; ``unsolved`` names rows whose IV could not be derived."""

    rows: list[dict[str, Any]]
    iv_source: dict[str, str]
    forward_source: dict[str, str]
    unsolved: dict[str, str]


def complete_summaries(options: Sequence[Row], futures: Sequence[Row], now: datetime) -> Completed:
    """Fill the forward and the IV of every option row that lacks them; see the module doc.

    ``futures`` are the same currency's future rows (their marks stand in for the forward).
    Rows that already carry both fields pass through unchanged.
    """
    future_marks = _future_marks(futures)
    rows: list[dict[str, Any]] = []
    iv_source: dict[str, str] = {}
    forward_source: dict[str, str] = {}
    unsolved: dict[str, str] = {}
    solve: list[int] = []
    inputs: list[tuple[float, float, float, float, bool]] = []
    for row in options:
        out = dict(row)
        name = str(row.get("instrument_name") or "")
        option = parse_option_name(name)
        has_iv = row.get("mark_iv") is not None
        if option is None or (has_iv and row.get("underlying_price") is not None):
            rows.append(out)
            continue
        try:
            forward, source = _forward(row, option, future_marks)
            mark = number(row, "mark_price", positive=True)
        except FieldError as exc:
            unsolved[name] = str(exc)
            rows.append(out)
            continue
        out["underlying_price"] = forward
        forward_source[name] = source
        # the mark is priced at the summary's own time, not at the reader's
        stamp = row.get("creation_timestamp")
        seen = datetime.fromtimestamp(float(stamp) / 1000, tz=UTC) if stamp else now
        tau = year_fraction(seen.astimezone(UTC), option.expiry)
        if not has_iv and (tau <= 0 or option.expiry <= now):
            unsolved[name] = f"expired at {option.expiry:%Y-%m-%d %H:%M} UTC: no IV to solve"
        elif not has_iv:
            solve.append(len(rows))
            inputs.append((mark * forward, forward, option.strike, tau, option.is_call))
        rows.append(out)
    if inputs:
        columns = [np.asarray(col) for col in zip(*inputs, strict=True)]
        sigma = implied_vol(*columns)
        for row_at, vol in zip(solve, sigma, strict=True):
            name = str(rows[row_at]["instrument_name"])
            if np.isfinite(vol):
                rows[row_at]["mark_iv"] = float(vol) * 100.0  # Deribit's unit: percent
                iv_source[name] = "mark_price"
            else:
                unsolved[name] = "no Black-76 vol reprices its mark_price"
    return Completed(rows, iv_source, forward_source, unsolved)
