"""``hedgebot report`` (the cost of hedging, from the ledger) and ``hedgebot risk`` (the book's
exposure on a grid of price and volatility moves)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.analysis.report import (
    build_report,
    funding_from,
    plot_report,
    render_report,
    to_csv,
    to_json,
)
from bot.analysis.scenarios import plot_gamma_profile, render_risk, scenario_grid
from bot.app import build_app, database_url
from bot.config import Settings, hedge_instruments
from bot.domain import DataError, utc
from bot.policy import lot_for
from bot.store.db import open_ledger
from bot.venues.errors import VenueError


def add_parsers(sub: Any) -> None:
    rep = sub.add_parser("report", help="what hedging cost: fees, slippage, funding, attribution")
    rep.add_argument("--paper", action="store_true", help="the paper ledger")
    rep.add_argument("--db", help="any SQLAlchemy URL instead of the configured ledger")
    rep.add_argument("--currency", help="one currency only")
    rep.add_argument("--since", help="ISO UTC start")
    rep.add_argument("--funding", help="rate per 8 h or a funding CSV (default 0.0001)")
    rep.add_argument("--rows", type=int, default=20, help="rebalances listed (default 20)")
    rep.add_argument("--csv", metavar="DIR", help="also write CSV tables to DIR")
    rep.add_argument("--plots", metavar="DIR", help="also write PNG plots to DIR")
    rep.add_argument("--json", action="store_true", help="print JSON instead of tables")
    rep.set_defaults(handler=cmd_report)

    risk = sub.add_parser("risk", help="greeks and P&L on a grid of price and vol moves")
    risk.add_argument("--paper", action="store_true")
    risk.add_argument("--currency", help="one currency only")
    risk.add_argument("--range", type=float, default=0.30, help="price moves ± (default 0.30)")
    risk.add_argument("--step", type=float, default=0.05, help="price step (default 0.05)")
    risk.add_argument(
        "--vols", default="-20,-10,0,10,20", help="vol moves in points (default -20,-10,0,10,20)"
    )
    risk.add_argument("--plot", metavar="PNG", help="write the gamma profile here")
    risk.add_argument("--json", action="store_true")
    risk.set_defaults(handler=cmd_risk)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    url = args.db or database_url(settings, args.paper)
    since = utc(datetime.fromisoformat(args.since)) if args.since else None
    try:
        report = build_report(
            open_ledger(url),
            hedge_instruments(settings.venue.facts),
            funding=funding_from(args.funding),
            currency=args.currency,
            since=since,
        )
    except DataError as exc:
        print(f"hedgebot report: {exc}")
        return 1
    print(to_json(report) if args.json else render_report(report, max_rows=args.rows))
    for path in to_csv(report, args.csv) if args.csv else []:
        print(f"wrote {path}", file=sys.stderr)
    for path in plot_report(report, args.plots) if args.plots else []:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_risk(args: argparse.Namespace, settings: Settings) -> int:
    n = round(args.range / args.step)
    moves = [round(i * args.step, 10) for i in range(-n, n + 1)]
    vols = [float(v) for v in args.vols.split(",")]
    return asyncio.run(_risk(args, settings, moves, vols))


async def _risk(
    args: argparse.Namespace, settings: Settings, moves: list[float], vols: list[float]
) -> int:
    app = build_app(settings, paper=args.paper, mode="risk")
    out: dict[str, Any] = {}
    failed = False
    try:
        for currency in (args.currency,) if args.currency else settings.venue.currencies:
            try:
                book = await app.ctx.tracker.read(currency)
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
                print(f"{currency}: cannot read the book: {exc}")
                failed = True
                continue
            out[currency] = grid.to_dict()
            if not args.json:
                print(render_risk(grid))
            if args.plot:
                path = Path(args.plot)
                if len(settings.venue.currencies) > 1 and not args.currency:
                    path = path.with_name(f"{path.stem}_{currency}{path.suffix}")
                print(f"wrote {plot_gamma_profile(grid, path)}", file=sys.stderr)
    finally:
        await app.close()
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    return 1 if failed else 0
