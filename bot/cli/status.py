"""``hedgebot status``: the book as the venue sees it, its greeks, and the ledger's last word.

The first line says which network the book is on (paper, sim, Deribit testnet or MAINNET), so
the simulator and real money never look alike; the exit code is 1 when the venue could not be
read (data read but not trusted, such as stale marks, is shown as the reason instead).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_FAILED, EXIT_OK, redact_url
from bot.cli.ledger import require_ledger

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings
    from bot.domain import Mark


def register(sub: Any) -> None:
    st = sub.add_parser(
        "status",
        help="network, book, greeks, last rebalances, trading state (exit 1: venue unread)",
    )
    st.add_argument("--paper", action="store_true", help="the paper venue and ledger")
    st.add_argument("--json", action="store_true", help="print JSON instead of text")
    st.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    require_ledger(args, settings)
    import asyncio  # not at module top: `hedgebot --help` stays quick

    return asyncio.run(_status(args, settings))


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_app

    app: App = build_app(settings, paper=args.paper, mode="status")
    try:
        data: dict[str, Any] = await status_data(app)
    finally:
        await app.close()
    command = "hedgebot status" + (" --paper" if args.paper else "")
    print(json.dumps(data, indent=2, default=str) if args.json else render_status(data, command))
    unread = any(book.get("read_failed") for book in data["books"].values())
    return EXIT_FAILED if unread else EXIT_OK


def network(settings: Settings, paper: bool) -> dict[str, str]:
    """Which market the book trades on: ``paper``, ``sim``, ``testnet``, ``mainnet``, ``custom``."""
    venue = settings.venue
    if paper:
        return {"network": "paper", "label": "PAPER: local fills on the simulated market"}
    if venue.kind == "sim":
        return {"network": "sim", "label": f"SIM: simulated Deribit at {venue.sim_url}"}
    if venue.network == "mainnet":
        return {"network": "mainnet", "label": "DERIBIT MAINNET: REAL MONEY"}
    if venue.network == "testnet":
        return {"network": "testnet", "label": "DERIBIT TESTNET (test.deribit.com)"}
    return {"network": "custom", "label": f"DERIBIT-COMPATIBLE at {redact_url(venue.url or '')}"}


async def _unhedged(app: App) -> dict[str, Any]:
    """Books the account holds in currencies the settings do not hedge: shown, not hedged."""
    from bot.domain import DataError
    from bot.venues.errors import VenueError

    out: dict[str, Any] = {}
    for currency in app.settings.venue.facts:
        if currency in app.settings.venue.currencies:
            continue
        try:
            held = await app.venue.positions(currency)
        except (DataError, VenueError):
            continue  # a venue without that currency's account: nothing held there
        if held:
            out[currency] = {
                "unhedged": "not in venue.currencies: add it there to hedge it",
                "positions": [{"instrument": p.instrument.name, "size": p.size} for p in held],
            }
    return out


async def status_data(app: App, last: int = 10) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (also the ``--json`` output)."""
    from bot.domain import DataError
    from bot.greeks import portfolio_greeks
    from bot.venues.errors import VenueError

    books: dict[str, Any] = {}
    for currency in app.settings.venue.currencies:
        try:
            book = await app.ctx.tracker.read(currency)
            g = portfolio_greeks(book, app.clock.now())
        except (DataError, VenueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if app.settings.venue.kind == "sim" and not app.paper:
                error += f" (is `hedgebot sim` running at {app.settings.venue.sim_url}?)"
            # a read that failed (VenueError) makes `status` exit 1; data it read but does not
            # trust (stale, inconsistent) is shown as the reason, as a cycle would skip on it
            books[currency] = {"error": error, "read_failed": isinstance(exc, VenueError)}
            continue
        books[currency] = {
            "as_of": book.as_of.isoformat(),
            "index_price": book.index_price,
            "hedge": {
                "instrument": book.hedge_instrument.name,
                "position": book.hedge_position(),
                "bid": book.hedge_quote.bid,
                "ask": book.hedge_quote.ask,
            },
            "equity": book.account.equity,
            "positions": [
                {
                    "instrument": p.instrument.name,
                    "size": p.size,
                    "state": (
                        "settling"
                        if p.instrument.expiry is not None and p.instrument.expiry <= book.as_of
                        else "open"
                    ),
                    **_sources(book.marks.get(p.instrument.name)),
                }
                for p in book.positions
            ],
            "expired_skipped": list(g.expired_skipped),
            "greeks": {
                "delta_coin": g.delta_coin,
                "delta_usd_target": g.delta_usd_target,
                "delta_usd": g.delta_usd,
                "gamma": g.gamma,
                "dollar_gamma": g.dollar_gamma,
                "vega": g.vega,
                "theta": g.theta,
            },
            "target_mode": app.settings.hedge.target_mode.value,
        }
    from bot.cli.control import trading_states
    from bot.store.lease import LeaseStore

    books.update(await _unhedged(app))
    states = trading_states(app.ledger, app.settings.venue.currencies)
    now = app.lease_clock.now()
    return {
        **network(app.settings, app.paper),
        "leases": [
            {
                "book": h.book,
                "mode": h.mode,
                "host": h.host,
                "pid": h.pid,
                "owner": h.owner,
                "acquired_at": h.acquired_at.isoformat(),
                "expires_at": h.expires_at.isoformat(),
                "live": h.expires_at > now,
            }
            for h in LeaseStore(app.ledger.engine).holders()
        ],
        "venue": app.venue.name,
        "venue_clock": app.venue_clock.describe() if app.venue_clock is not None else None,
        "database": redact_url(app.database_url),
        "trading_state": states,
        "books": books,
        "last_rebalances": [
            {
                "ts": r.ts.isoformat(),
                "currency": r.currency,
                "status": r.status,
                "reason": r.reason,
                "delta_before": r.delta_before,
                "trade_amount": r.trade_amount,
            }
            for r in app.ledger.last_rebalances(last)
        ],
    }


def _sources(mark: Mark | None) -> dict[str, str]:
    """Where a mark's IV and forward came from, when the venue did not send them."""
    if mark is None or (mark.iv_source == "venue" and mark.forward_source == "venue"):
        return {}
    return {"iv_source": mark.iv_source, "forward_source": mark.forward_source}


def _derived(position: dict[str, Any]) -> str:
    notes = []
    if position.get("state") == "settling":
        notes.append("expired: settling, not in the greeks")
    if "iv_source" in position:
        iv = "IV solved from the mark" if position["iv_source"] == "mark_price" else "IV: venue"
        notes.append(f"({iv}; forward: {position['forward_source']})")
    return "; ".join(notes)


def _clock_line(data: dict[str, Any]) -> str | None:
    clock = data.get("venue_clock")
    if not clock or clock.get("offset_seconds") is None:
        return None
    offset = clock["offset_seconds"]
    where = "behind" if offset > 0 else "ahead of"
    return (
        f"venue clock: this host is {abs(offset):.3f}s {where} the venue's (round trip "
        f"{clock['round_trip_seconds']:.3f}s, limit {clock['max_offset_seconds']:g}s, "
        f"measured {clock['measured_at'][:19]})"
    )


def render_status(data: dict[str, Any], command: str = "hedgebot status") -> str:
    """The status as aligned tables, headed by the network so real money is unmistakable."""
    from bot.analysis.tables import table

    ts = data["trading_state"]
    parts = [
        f"{command}   network {data.get('label', data['venue'])}",
        f"ledger {data['database']}   venue client {data['venue']}",
    ]
    clock_line = _clock_line(data)
    if clock_line:
        parts.append(clock_line)
    scopes = [("all", ts["state"], ts.get("updated_at"), ts["reason"])]
    scopes += [
        (cur, f"{s['state']} (own: {s['own_state']})", s["updated_at"], s["reason"])
        for cur, s in ts.get("by_currency", {}).items()
    ]
    parts.append(
        table(
            "trading state (hedgebot halt | reduce | resume)",
            ["scope", "state", "set at (UTC)", "why (by whom)"],
            [(a, b, _when(c), d) for a, b, c, d in scopes],
        )
    )
    for currency, book in data["books"].items():
        if "error" in book:
            parts.append(f"{currency}: cannot read the book: {book['error']}")
            continue
        if "unhedged" in book:
            parts.append(
                f"{currency} book: unhedged ({book['unhedged']})\n"
                + table(
                    f"{currency} positions, in each instrument's amount unit",
                    ["instrument", "size"],
                    [(p["instrument"], f"{p['size']:+,.4f}") for p in book["positions"]],
                    right=[1],
                )
            )
            continue
        g, h = book["greeks"], book["hedge"]
        rows: list[tuple[str, ...]] = [
            ("index", f"{book['index_price']:,.2f}", "USD"),
            ("equity", f"{book['equity']:.6f}", currency),
            ("delta (coin, delta_total)", f"{g['delta_coin']:+.5f}", currency),
            ("delta (usd target)", f"{g['delta_usd_target']:+.5f}", currency),
            ("delta", f"{g['delta_usd']:+,.0f}", "USD"),
            ("gamma", f"{g['gamma']:+.3e}", f"{currency} per USD"),
            ("dollar gamma", f"{g['dollar_gamma']:+,.0f}", "USD per 1% move"),
            ("vega", f"{g['vega']:+,.1f}", "USD per vol point"),
            ("theta", f"{g['theta']:+,.1f}", "USD per day"),
            (f"hedge {h['instrument']}", f"{h['position']:+,.0f}", "USD (contracts x face)"),
            ("hedge bid / ask", f"{h['bid']:,.2f} / {h['ask']:,.2f}", "USD"),
        ]
        rows += [
            (p["instrument"], f"{p['size']:+,.4f}", currency, _derived(p))
            for p in book["positions"]
        ]
        parts.append(
            table(
                f"{currency} book at {book['as_of'][:19]} UTC ({book['target_mode']} target)",
                ["quantity", "value", "unit", "note"],
                rows,
                right=[1],
            )
        )
    leases = data.get("leases", [])
    parts.append(
        table(
            "book leases (one writer per book)",
            ["book", "mode", "holder", "until (UTC)"],
            [
                (
                    h["book"],
                    h["mode"],
                    f"pid {h['pid']} on {h['host']}",
                    h["expires_at"][:19] + ("" if h["live"] else " (expired)"),
                )
                for h in leases
            ]
            or [("none held", "", "", "")],
        )
    )
    parts.append(
        table(
            "last rebalances",
            ["time (UTC)", "currency", "status", "trade (USD)", "reason"],
            [
                (
                    r["ts"][:19],
                    r["currency"],
                    r["status"],
                    "" if r["trade_amount"] is None else f"{r['trade_amount']:+,.0f}",
                    r["reason"],
                )
                for r in data["last_rebalances"]
            ],
            right=[3],
        )
    )
    return "\n\n".join(parts)


def _when(value: Any) -> str:
    return "never" if value is None else str(value)[:19]
