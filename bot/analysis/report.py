"""``hedgebot report``: the cost of hedging as terminal tables, CSV, JSON and PNG plots.

The figures come from :func:`bot.analysis.costs.build_report` (fees, slippage, funding per fill
and per rebalance) and :mod:`bot.analysis.attribution` (P&L by greek, realised vs implied vol,
variance removed); this module only presents them. Entry points for the command::

    ledger = open_ledger(url)
    report = build_report(ledger, hedge_instruments(facts), funding=funding_from("0.0001"))
    print(render_report(report)); to_csv(report, out); plot_report(report, out); to_json(report)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.analysis.attribution import (
    DEFAULT_FUNDING_RATE_8H,
    ConstantFunding,
    Funding,
    SeriesFunding,
)
from bot.analysis.costs import (
    NO_REBALANCES,
    CurrencyReport,
    FillCost,
    RebalanceCost,
    Report,
    build_report,
)
from bot.analysis.tables import table
from bot.domain import DataError

__all__ = [
    "NO_REBALANCES",
    "Report",
    "build_report",
    "funding_from",
    "plot_report",
    "render_report",
    "report_data",
    "to_csv",
    "to_json",
]

PARTS = ("delta", "gamma", "theta", "vega", "residual")
_INTERVAL_COLUMNS = (
    "dt_days",
    "d_index",
    "actual",
    *PARTS,
    "hedge_pnl",
    "unhedged",
    "funding_usd",
    "funding_coin",
)


def funding_from(value: str | float | None) -> Funding:
    """A funding source from a command-line value: a rate per 8 h (``0.0001``) or the path of
    a ``timestamp,funding_rate`` CSV (e.g. the Binance series); None is the default rate."""
    if value is None:
        return ConstantFunding(DEFAULT_FUNDING_RATE_8H)
    if isinstance(value, int | float):
        return ConstantFunding(float(value))
    try:
        return ConstantFunding(float(value))
    except ValueError:
        pass
    path = Path(value)
    if not path.is_file():
        raise DataError(f"funding {value!r} is neither a rate per 8 h nor a CSV file")
    from bot.backtest.history import load_funding  # pandas: only for a funding file

    return SeriesFunding(load_funding(path))


# -- terminal -----------------------------------------------------------------------------


def _f(x: float | None, spec: str, none: str = "-") -> str:
    return none if x is None or not math.isfinite(x) else format(x, spec)


def render_report(report: Report, *, max_rows: int = 20) -> str:
    """The report as terminal tables; ``max_rows`` traded rebalances per currency (all are in
    the CSV). An empty ledger renders its message."""
    if report.empty:
        return f"hedgebot report: {report.message or NO_REBALANCES}"
    sections = [_render_book(b, report.funding, max_rows) for b in report.books]
    return "\n\n".join(sections)


def _render_book(b: CurrencyReport, funding: str, max_rows: int) -> str:
    t, a, ccy = b.totals, b.attribution, b.currency
    lines = [
        f"{ccy}: {b.first_ts:%Y-%m-%d %H:%M} → {b.last_ts:%Y-%m-%d %H:%M} UTC, "
        f"{t.rebalances} rebalances ({t.traded} traded), {t.fills} fills",
        "",
        f"{'cost':<28}{ccy:>16}{'USD':>14}",
        f"{'  fees':<28}{t.fees_coin:>16.8f}{t.fees_usd:>14,.2f}",
        f"{'  slippage vs decision mid':<28}{t.slippage_coin:>16.8f}{t.slippage_usd:>14,.2f}"
        f"   ({_f(t.slippage_bps, '+.2f')} bps, amount-weighted)",
        f"{'  funding on the hedge':<28}{t.funding_coin:>16.8f}{t.funding_usd:>14,.2f}"
        f"   ({funding})",
        f"{'  total':<28}{t.fees_coin + t.slippage_coin + t.funding_coin:>16.8f}"
        f"{t.cost_usd:>14,.2f}",
    ]
    for name, amount in sorted(t.traded_notional.items()):
        lines.append(f"  traded {name}: {amount:,.4f} (instrument units)")
    lines.append("")
    if a.n:
        actual = float(a.actual.sum())
        lines.append(f"P&L between rebalances, USD ({a.n} intervals; before fees and slippage)")
        for part in (*PARTS, "actual", "hedge_pnl"):
            total = float(getattr(a, part).sum())
            share = f"{total / actual + 0.0:>8.1%}" if actual else ""
            label = {"actual": "book P&L", "hedge_pnl": "of which hedge"}.get(part, part)
            lines.append(f"  {label:<16}{total:>14,.2f} {share}")
        source = (
            "mean IV stored with the greeks"
            if a.vega_intervals == a.n
            else "break-even -2*365*theta/(gamma*S^2)"
            if a.vega_intervals == 0
            else "stored IV where recorded, else break-even"
        )
        lines.append(
            f"volatility: realised {_f(a.realised_vol, '.1%')} vs implied "
            f"{_f(a.implied_vol_mean, '.1%')} (time-weighted; {source})"
        )
        lines.append(
            f"P&L variance per interval: unhedged {_f(a.variance_unhedged, ',.2f')} USD², "
            f"hedged {_f(a.variance_hedged, ',.2f')} USD²; cost per USD² removed: "
            + (
                _f(b.cost_per_variance, ".6f") + " USD"
                if b.cost_per_variance is not None
                else "n/a (hedging removed no variance)"
            )
        )
        lines.append("")
    # Positions, not row objects: a year of rebalances is a million rows, a screen is twenty.
    traded = b.rebalances.traded_rows()
    cum = np.cumsum(b.rebalances.cost_usd())
    shown = traded[-max_rows:].tolist() if max_rows > 0 else []
    lines.append(
        table(
            f"rebalances that traded ({len(shown)} of {len(traded)} shown; all in the CSV)",
            [
                "time (UTC)",
                "index (USD)",
                f"delta ({ccy})",
                f"band ({ccy})",
                "trade",
                "filled",
                "fees (USD)",
                "slip (bps)",
                "slip (USD)",
                "funding (USD)",
                "cum. cost (USD)",
            ],
            [
                (
                    f"{r.ts:%m-%d %H:%M:%S}",
                    _f(r.index_price, ",.0f"),
                    _f(r.delta_before, "+.4f"),
                    f"{_f(r.band_low, '+.3f')}..{_f(r.band_high, '+.3f')}",
                    _f(r.trade_amount, "+,.0f"),
                    f"{r.filled_amount:+,.0f}",
                    f"{r.fees_usd:,.2f}",
                    _f(r.slippage_bps, "+.2f"),
                    f"{r.slippage_usd:,.2f}",
                    f"{r.funding_usd:,.2f}",
                    f"{float(cum[k]):,.2f}",
                )
                for k in shown
                for r in (b.rebalances[k],)
            ],
            right=range(1, 11),
            caption="trade and filled in the hedge instrument's unit (USD for inverse perpetuals)",
        )
    )
    lines += [f"note: {n}" for n in b.notes]
    return "\n".join(lines)


# -- data: JSON and CSV ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.floating):
        return _plain(float(value))
    return value


def _row(obj: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dataclasses.asdict(obj).items()}


def _intervals(b: CurrencyReport) -> list[dict[str, Any]]:
    a = b.attribution
    rows = []
    for i in range(a.n):
        row: dict[str, Any] = {"start": a.start[i].isoformat(), "end": a.end[i].isoformat()}
        row.update({c: float(getattr(a, c)[i]) for c in _INTERVAL_COLUMNS})
        row["implied_vol"] = a.implied_vol[i]
        rows.append(row)
    return rows


def _summary(b: CurrencyReport) -> dict[str, Any]:
    t, a = b.totals, b.attribution
    out: dict[str, Any] = {
        k: _plain(v) for k, v in dataclasses.asdict(t).items() if k != "traded_notional"
    }
    out.update(
        first_ts=b.first_ts.isoformat(),
        last_ts=b.last_ts.isoformat(),
        cost_usd=t.cost_usd,
        traded_notional=dict(t.traded_notional),
        intervals=a.n,
        realised_vol=a.realised_vol,
        implied_vol_mean=a.implied_vol_mean,
        variance_unhedged=a.variance_unhedged,
        variance_hedged=a.variance_hedged,
        variance_removed=a.variance_removed,
        cost_per_variance=b.cost_per_variance,
        attribution={p: float(getattr(a, p).sum()) for p in (*PARTS, "actual", "hedge_pnl")},
    )
    return out


def report_data(report: Report) -> dict[str, Any]:
    """The whole report as plain JSON-able data."""
    books = []
    for b in report.books:
        cum = b.cumulative_cost_usd()
        books.append(
            {
                "currency": b.currency,
                "summary": _summary(b),
                "rebalances": [
                    {**_row(r), "cost_usd": r.cost_usd, "cumulative_cost_usd": c}
                    for r, c in zip(b.rebalances, cum, strict=True)
                ],
                "fills": [_row(f) for f in b.fills],
                "intervals": _intervals(b),
                "notes": list(b.notes),
            }
        )
    return {"message": report.message, "funding": report.funding, "books": books}


def to_json(report: Report) -> str:
    return json.dumps(report_data(report), indent=2, allow_nan=False)


def to_csv(report: Report, directory: str | Path) -> list[Path]:
    """Write rebalances.csv, fills.csv, intervals.csv and summary.csv (a ``currency`` column in
    each) under ``directory``; an empty report writes their headers only."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    data = report_data(report)
    reb_cols = [
        "currency",
        *(f.name for f in dataclasses.fields(RebalanceCost)),
        "cost_usd",
        "cumulative_cost_usd",
    ]
    fill_cols = ["currency", *(f.name for f in dataclasses.fields(FillCost))]
    int_cols = ["currency", "start", "end", *_INTERVAL_COLUMNS, "implied_vol"]
    tables: dict[str, tuple[list[str], list[dict[str, Any]]]] = {
        "rebalances.csv": (reb_cols, []),
        "fills.csv": (fill_cols, []),
        "intervals.csv": (int_cols, []),
        "summary.csv": (["currency", "figure", "value"], []),
    }
    for book in data["books"]:
        ccy = book["currency"]
        tables["rebalances.csv"][1].extend({"currency": ccy, **r} for r in book["rebalances"])
        tables["fills.csv"][1].extend({"currency": ccy, **f} for f in book["fills"])
        tables["intervals.csv"][1].extend({"currency": ccy, **i} for i in book["intervals"])
        for key, value in _flat(book["summary"]):
            tables["summary.csv"][1].append({"currency": ccy, "figure": key, "value": value})
    written = []
    for name, (columns, rows) in tables.items():
        path = out / name
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    return written


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            items += _flat(v, f"{prefix}{k}.")
        else:
            items.append((f"{prefix}{k}", v))
    return items


# -- plots ----------------------------------------------------------------------------------

_FEW = 60  # up to this many points or trades a plot marks each one


def plot_report(report: Report, directory: str | Path) -> list[Path]:
    """Per currency: ``<ccy>_delta.png`` (delta with the band and the trades),
    ``<ccy>_cost.png`` (cumulative cost by kind), ``<ccy>_attribution.png`` (cumulative P&L by
    greek). Returns the files written (none for an empty report)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for b in report.books:
        for name, draw in (
            ("delta", _plot_delta),
            ("cost", _plot_cost),
            ("attribution", _plot_pnl),
        ):
            fig, ax = plt.subplots(figsize=(10, 5))
            try:
                draw(b, ax)
                ax.set_xlabel("time (UTC)")  # the ledger's timestamps are UTC
                ax.grid(alpha=0.3)
                fig.autofmt_xdate()
                fig.tight_layout()
                path = out / f"{b.currency.lower()}_{name}.png"
                fig.savefig(path, dpi=110)
                written.append(path)
            finally:
                plt.close(fig)
    return written


def _plot_delta(b: CurrencyReport, ax: Any) -> None:
    rows = [r for r in b.rebalances if r.delta_before is not None]
    # The path the book's delta took: drift from one read to the next, a jump at each trade.
    path_t, path_d = [], []
    for r in rows:
        path_t += [r.ts, r.ts]
        path_d += [r.delta_before, r.delta_held if r.delta_held is not None else r.delta_before]
    ax.plot(path_t, path_d, linewidth=1, label="delta")
    ax.scatter([r.ts for r in rows], [r.delta_before for r in rows], s=8, label="read at cycle")
    banded = [r for r in rows if r.band_low is not None and r.band_high is not None]
    if banded:
        ax.fill_between(
            [r.ts for r in banded],
            [r.band_low for r in banded],
            [r.band_high for r in banded],
            step="post",
            alpha=0.2,
            label="band",
        )
    traded = [r for r in rows if r.filled_amount and r.delta_held is not None]
    for r in traded if len(traded) <= _FEW else ():  # many trades: the path's jumps show them
        ax.annotate(
            "",
            xy=(r.ts, r.delta_held),
            xytext=(r.ts, r.delta_before),
            arrowprops={"arrowstyle": "->", "color": "tab:red"},
        )
    ax.scatter(
        [r.ts for r in traded], [r.delta_held for r in traded], color="tab:red", s=14, label="trade"
    )
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylabel(f"delta ({b.currency}, target's terms)")
    ax.set_title(f"{b.currency}: delta, band and hedge trades")
    ax.legend(fontsize=8)


def _plot_cost(b: CurrencyReport, ax: Any) -> None:
    ts = [r.ts for r in b.rebalances]
    parts = {
        "fees": [r.fees_usd for r in b.rebalances],
        "slippage": [r.slippage_usd for r in b.rebalances],
        "funding (negative: received)": [r.funding_usd for r in b.rebalances],
    }
    for name, values in parts.items():
        ax.step(ts, np.cumsum(values), where="post", linewidth=1, label=name)
    ax.step(ts, b.cumulative_cost_usd(), where="post", color="black", linewidth=2, label="total")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylabel("cumulative cost (USD)")
    ax.set_title(f"{b.currency}: cost of hedging")
    ax.legend(fontsize=8, loc="upper left")


def _plot_pnl(b: CurrencyReport, ax: Any) -> None:
    a = b.attribution
    if not a.n:
        ax.text(
            0.5, 0.5, "fewer than two rebalances with greeks", ha="center", transform=ax.transAxes
        )
        return
    times = [a.start[0], *a.end]
    for part in (*PARTS, "actual"):
        style = {"color": "black", "linewidth": 2} if part == "actual" else {"linewidth": 1}
        cumulative = np.concatenate(([0.0], np.cumsum(getattr(a, part))))
        ax.plot(times, cumulative, marker="." if a.n <= _FEW else None, label=part, **style)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylabel("cumulative P&L (USD)")
    ax.set_title(f"{b.currency}: P&L by greek between rebalances (before costs)")
    ax.legend(fontsize=8, loc="upper left")
