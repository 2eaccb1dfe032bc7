"""``hedgebot report`` (the cost of hedging, from the ledger) and ``hedgebot risk`` (the book's
exposure on a grid of price and volatility moves)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    currency,
    database_url_arg,
    float_list,
    iso_time,
    positive_float,
    positive_int,
    redact_url,
)
from bot.cli.ledger import configured_currencies, require_ledger

if TYPE_CHECKING:
    from bot.config import Settings


def register(sub: Any) -> None:
    rep = sub.add_parser("report", help="what hedging cost: fees, slippage, funding, attribution")
    rep.add_argument("--paper", action="store_true", help="the paper ledger")
    rep.add_argument(
        "--db",
        type=database_url_arg,
        metavar="URL",
        help="any SQLAlchemy URL instead of the configured ledger",
    )
    rep.add_argument("--currency", type=currency, metavar="CUR", help="one currency only")
    rep.add_argument(
        "--since", type=iso_time, metavar="TIME", help="ISO UTC start, e.g. 2026-01-31T08:00"
    )
    rep.add_argument(
        "--funding", metavar="RATE|CSV", help="rate per 8 h or a funding CSV (default 0.0001)"
    )
    rep.add_argument(
        "--rows", type=positive_int, default=20, metavar="N", help="rebalances listed (default 20)"
    )
    rep.add_argument("--csv", metavar="DIR", help="also write CSV tables to DIR")
    rep.add_argument("--plots", metavar="DIR", help="also write PNG plots to DIR")
    rep.add_argument("--json", action="store_true", help="print JSON instead of tables")
    rep.set_defaults(handler=cmd_report)

    risk = sub.add_parser("risk", help="greeks and P&L on a grid of price and vol moves")
    risk.add_argument("--paper", action="store_true", help="the paper venue and ledger")
    risk.add_argument("--currency", type=currency, metavar="CUR", help="one currency only")
    risk.add_argument(
        "--range",
        type=positive_float,
        default=0.30,
        metavar="FRACTION",
        help="price moves ± (default 0.30)",
    )
    risk.add_argument(
        "--step",
        type=positive_float,
        default=0.05,
        metavar="FRACTION",
        help="price step (default 0.05)",
    )
    risk.add_argument(
        "--vols",
        type=float_list,
        metavar="LIST",
        default=[-20.0, -10.0, 0.0, 10.0, 20.0],
        help="vol moves in points (default -20,-10,0,10,20)",
    )
    risk.add_argument("--plot", metavar="PNG", help="write the gamma profile here")
    risk.add_argument("--json", action="store_true", help="print JSON instead of tables")
    risk.set_defaults(handler=cmd_risk)


LARGE = 20_000  # rebalances beyond which a report says it is working, even off a terminal


@contextmanager
def progress(message: str, *, large: bool) -> Iterator[None]:
    """A spinner on a terminal; elsewhere one line before and after, for large work only."""
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message + " ..."):
            yield
        return
    if large:
        print(f"{message} ...", file=sys.stderr)
    yield
    if large:
        print(f"{message}: done", file=sys.stderr)


def _writable_dir(option: str, value: str | None) -> None:
    if value is not None and Path(value).exists() and not Path(value).is_dir():
        raise UsageError(f"{option} {value}: exists and is not a directory; name a directory")


def _funding(value: str | None) -> Any:
    from bot.analysis.report import funding_from
    from bot.domain import DataError

    try:
        return funding_from(value)
    except DataError as exc:
        raise UsageError(
            f"--funding: {exc}; give a rate per 8 h (e.g. 0.0001) or a timestamp,funding_rate CSV"
        ) from None


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    _writable_dir("--csv", args.csv)
    _writable_dir("--plots", args.plots)
    funding = _funding(args.funding)
    url = require_ledger(args, settings, args.db)
    from bot.analysis.report import build_report, plot_report, render_report, to_csv, to_json
    from bot.config import hedge_instruments
    from bot.domain import DataError
    from bot.store.db import open_ledger

    ledger = open_ledger(url)
    rows = ledger.summary().rebalances
    try:
        with progress(f"building the report from {rows:,} rebalances", large=rows > LARGE):
            report = build_report(
                ledger,
                hedge_instruments(settings.venue.facts),
                funding=funding,
                currency=args.currency,
                since=args.since,
            )
    except DataError as exc:
        print(f"hedgebot report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ledger.close()
    if not args.json:
        print(
            f"hedgebot report{' --paper' if args.paper else ''}: ledger {redact_url(url)}, "
            f"{rows:,} rebalances; currency {args.currency or 'all'}, since "
            f"{args.since.isoformat() if args.since else 'the first'}, funding "
            f"{args.funding or '0.0001 per 8 h'}\n"
        )
    print(to_json(report) if args.json else render_report(report, max_rows=args.rows))
    for option, target, write in (
        ("--csv", args.csv, to_csv),
        ("--plots", args.plots, plot_report),
    ):
        if target:
            try:
                written = write(report, target)
            except OSError as exc:
                raise UsageError(
                    f"{option} {target}: cannot write there ({exc.strerror})"
                ) from None
            for path in written:
                print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def cmd_risk(args: argparse.Namespace, settings: Settings) -> int:
    if args.step > args.range:
        raise UsageError(f"--step {args.step}: larger than --range {args.range}; make it smaller")
    n = round(args.range / args.step)
    if n > 200:
        raise UsageError(
            f"--range {args.range} / --step {args.step} makes {2 * n + 1} price moves; "
            "keep it to 401 or fewer"
        )
    moves = [round(i * args.step, 10) for i in range(-n, n + 1)]
    if any(v <= -100 for v in args.vols):
        raise UsageError(f"--vols {args.vols}: a vol move of -100 points or less leaves no vol")
    currencies = configured_currencies(args, settings)
    require_ledger(args, settings)
    import asyncio  # not at module top: `hedgebot --help` stays quick

    return asyncio.run(_risk(args, settings, currencies, moves, list(args.vols)))


async def _risk(
    args: argparse.Namespace,
    settings: Settings,
    currencies: list[str],
    moves: list[float],
    vols: list[float],
) -> int:
    from bot.analysis.scenarios import plot_gamma_profile, render_risk, scenario_grid
    from bot.app import build_app
    from bot.domain import DataError
    from bot.policy import lot_for
    from bot.venues.errors import VenueError

    app = build_app(settings, paper=args.paper, mode="risk")
    if not args.json:
        print(
            f"hedgebot risk{' --paper' if args.paper else ''}: price moves ±{args.range:.0%} in "
            f"steps of {args.step:.0%}, vol moves {', '.join(f'{v:+g}' for v in vols)} points\n"
        )
    out: dict[str, Any] = {}
    failed = False
    try:
        for cur in currencies:
            try:
                book = await app.ctx.tracker.read(cur)
                grid = scenario_grid(
                    book,
                    app.clock.now(),
                    moves,
                    vols,
                    lot_for(book.hedge_instrument),
                    target_mode=settings.hedge.target_mode,
                    target=settings.hedge.target_delta,
                )
            except (DataError, VenueError) as exc:
                print(f"{cur}: cannot read the book: {exc}", file=sys.stderr)
                failed = True
                continue
            out[cur] = grid.to_dict()
            if not args.json:
                print(render_risk(grid))
            if args.plot:
                path = Path(args.plot)
                if len(currencies) > 1:
                    path = path.with_name(f"{path.stem}_{cur}{path.suffix}")
                try:
                    print(f"wrote {plot_gamma_profile(grid, path)}", file=sys.stderr)
                except OSError as exc:
                    raise UsageError(f"--plot {path}: cannot write it ({exc.strerror})") from None
    finally:
        await app.close()
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    return EXIT_FAILED if failed else EXIT_OK
