"""``hedgebot status``: the book as the venue sees it, its greeks, and the ledger's last word."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.domain import DataError, Mark
from bot.greeks import portfolio_greeks
from bot.venues.errors import VenueError

if TYPE_CHECKING:
    from bot.app import App


async def _unhedged(app: App) -> dict[str, Any]:
    """Books the account holds in currencies the settings do not hedge: shown, not hedged."""
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
    books.update(await _unhedged(app))
    state = app.ledger.get_trading_state()
    clock = app.venue_clock.describe() if app.venue_clock is not None else None
    return {
        "venue": app.venue.name,
        "venue_clock": clock,
        "database": app.database_url,
        "trading_state": {"state": state.state, "reason": state.reason},
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
    if "iv_source" not in position:
        return ""
    iv = "IV solved from the mark" if position["iv_source"] == "mark_price" else "IV: venue"
    return f"  ({iv}; forward: {position['forward_source']})"


def render_status(data: dict[str, Any]) -> str:
    lines = [
        f"venue {data['venue']}   ledger {data['database']}   "
        f"trading {data['trading_state']['state']}",
    ]
    clock = data.get("venue_clock")
    if clock and clock.get("offset_seconds") is not None:
        offset = clock["offset_seconds"]
        where = "behind" if offset > 0 else "ahead of"
        lines.append(
            f"venue clock: this host is {abs(offset):.3f}s {where} the venue's (round trip "
            f"{clock['round_trip_seconds']:.3f}s, limit {clock['max_offset_seconds']:g}s, "
            f"measured {clock['measured_at'][:19]})"
        )
    for currency, book in data["books"].items():
        if "error" in book:
            lines.append(f"\n{currency}: cannot read the book: {book['error']}")
            continue
        if "unhedged" in book:
            lines.append(f"\n{currency}: unhedged ({book['unhedged']})")
            lines += [f"    {p['instrument']:<28} {p['size']:+,.4f}" for p in book["positions"]]
            continue
        g, h = book["greeks"], book["hedge"]
        lines += [
            f"\n{currency} at {book['as_of']}  index {book['index_price']:,.2f}  "
            f"equity {book['equity']:.6f} {currency}",
            f"  delta (coin, delta_total) {g['delta_coin']:+.5f}   "
            f"delta (usd target) {g['delta_usd_target']:+.5f}   [{book['target_mode']} target]",
            f"  gamma {g['gamma']:+.3e}/$  dollar gamma {g['dollar_gamma']:+,.0f}  "
            f"vega {g['vega']:+,.1f}  theta {g['theta']:+,.1f}",
            f"  hedge {h['instrument']} {h['position']:+,.0f}  (bid {h['bid']:,.2f} / "
            f"ask {h['ask']:,.2f})",
        ]
        lines += [
            f"    {p['instrument']:<28} {p['size']:+,.4f}"
            + ("  expired: settling, not in the greeks" if p.get("state") == "settling" else "")
            + _derived(p)
            for p in book["positions"]
        ]
    lines.append("\nlast rebalances:")
    for r in data["last_rebalances"]:
        amount = r["trade_amount"]
        lines.append(
            f"  {r['ts'][:19]}  {r['currency']}  {r['status']:<9} "
            f"{'' if amount is None else f'{amount:+,.0f}':>10}  {r['reason']}"
        )
    return "\n".join(lines)
