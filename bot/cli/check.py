"""``hedgebot check``: the preflight before trusting a key with real money.

One line per check, ``ok``, ``warn`` or ``fail``; exit 1 when any check fails. It reads only:
the first rebalance is planned as ``rebalance --dry-run`` plans it, nothing is sent.

Checks: the network (testnet or MAINNET, loudly), connectivity and round trip, the clock offset
to the venue, the key's scopes (trading needs ``trade:read_write``; a key that may withdraw,
``wallet:read_write``, fails unless ``venue.allow_withdraw_scope``), the account (main or
subaccount, positions the ledger does not know), the instrument facts against the settings,
the ledger's schema, a live daemon on the book (its lease), another hedgebot's orders or
trades on the account, and the first rebalance's plan (not while a live daemon holds the book:
a dry run beside it would read its orders mid-flight). Deribit's scopes: docs.deribit.com,
"Access scope".
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # annotations only: `hedgebot --help` imports nothing heavy
    from bot.clock import Clock
    from bot.config import Settings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


OTHERS_LOOKBACK = timedelta(days=1)  # how far back ``check`` looks for another hedgebot's trades


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="preflight: venue, clock, key scopes, account, facts, ledger")
    p.add_argument("--json", action="store_true", help="one JSON object per check, as a list")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # not at module top: `hedgebot --help` stays quick

    from bot.cli.common import known_secrets, scrub

    keys = (settings.venue.api_key, settings.venue.api_secret)
    db = settings.database
    secrets = known_secrets([db.url, db.paper_url, settings.venue.url])
    secrets += [k.get_secret_value() for k in keys if k is not None]
    checks = [
        Check(c.name, c.status, scrub(c.detail, secrets)) for c in asyncio.run(run_checks(settings))
    ]
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{c.status:<4}  {c.name:<14} {c.detail}")
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        print(f"hedgebot check: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def network_check(settings: Settings) -> Check:
    v = settings.venue
    if v.kind == "sim":
        return Check("network", "ok", f"simulated venue (hedgebot sim) at {v.sim_url}")
    if v.network == "mainnet":
        return Check("network", "warn", "MAINNET: real money, real orders")
    if v.network == "custom":
        return Check("network", "ok", f"custom venue at {v.url}")
    return Check("network", "ok", "TESTNET (test.deribit.com): no real money")


def scope_check(scope: str, allow_withdraw: bool) -> Check:
    """Deribit scopes: ``trade:read_write`` to trade; ``wallet:read_write`` may withdraw."""
    scopes = set(scope.split())
    if "trade:read_write" not in scopes:
        return Check("key scopes", "fail", f"cannot trade: no trade:read_write in {scope!r}")
    if "wallet:read_write" in scopes:
        if not allow_withdraw:
            return Check(
                "key scopes",
                "fail",
                "the key may WITHDRAW (wallet:read_write): make a key without it, or set "
                "venue.allow_withdraw_scope: true",
            )
        return Check("key scopes", "warn", "trade yes; withdraw YES (allowed by the settings)")
    return Check("key scopes", "ok", "trade yes, withdraw no")


def clock_check(offset: float, limit: float) -> Check:
    where = "behind" if offset > 0 else "ahead of"
    text = f"host clock {abs(offset):.3f}s {where} the venue's (limit {limit:g}s)"
    if abs(offset) > limit:
        return Check("clock", "fail", text + ": fix the host clock (NTP)")
    if abs(offset) > limit / 2:
        return Check("clock", "warn", text)
    return Check("clock", "ok", text)


async def run_checks(settings: Settings, clock: Clock | None = None) -> list[Check]:
    """Every check, in order; a check that cannot run is a ``fail`` naming why. ``clock``
    replaces the settings' clock (tests)."""
    from bot.app import build_app, build_venue, database_url, make_clock
    from bot.store.db import current_revision, head_revision, make_engine
    from bot.venues.deribit.adapter import DeribitVenue, UnsafeUrl
    from bot.venues.errors import VenueError

    checks = [network_check(settings)]
    clock = clock or make_clock(settings)
    url = database_url(settings, False)
    try:
        venue = build_venue(settings, clock, url, paper=False)
    except UnsafeUrl as exc:
        return [*checks, Check("connectivity", "fail", str(exc))]
    if not isinstance(venue, DeribitVenue):  # pragma: no cover - build_venue's live branch
        return [*checks, Check("connectivity", "fail", f"not a Deribit venue: {venue.name}")]
    try:
        checks += await _venue_checks(settings, venue)
        at = current_revision(make_engine(url))
        head = head_revision()
        if at != head:
            checks.append(
                Check(
                    "ledger",
                    "fail",
                    f"{url} is at {at or 'no schema'}, code needs {head}: "
                    "run `hedgebot db upgrade`",
                )
            )
            return checks
        checks.append(Check("ledger", "ok", f"{url} at {head}"))
        app = build_app(settings, paper=False, clock=clock, mode="check", venue=venue)
        checks += await _ledger_checks(app)
    except VenueError as exc:
        checks.append(Check("venue", "fail", f"{type(exc).__name__}: {exc}"))
    finally:
        await venue.close()
    return checks


async def _venue_checks(settings: Settings, venue: Any) -> list[Check]:
    from bot.venues.deribit.facts import FactsRefused
    from bot.venues.errors import AuthError, VenueError

    out: list[Check] = []
    vc = venue.venue_clock
    try:
        if vc is not None:
            offset = await vc.measure()
            rtt = vc.round_trip_seconds or 0.0
            out.append(
                Check("connectivity", "ok", f"public/get_time answered in {rtt * 1000:.0f} ms")
            )
            out.append(clock_check(offset, settings.venue.clock.max_offset_seconds))
        else:
            await venue.server_time()
            out.append(Check("connectivity", "ok", "public/get_time answered"))
            out.append(Check("clock", "ok", "simulated time shared with the venue: not measured"))
    except VenueError as exc:
        return [Check("connectivity", "fail", f"{type(exc).__name__}: {exc}")]
    try:
        scope = await venue.key_scope()
        out.append(scope_check(scope, settings.venue.allow_withdraw_scope))
        kind = "main account" if "mainaccount" in scope.split() else "subaccount"
        out.append(Check("account", "ok", f"{kind} (key scope {scope!r})"))
    except (AuthError, VenueError) as exc:
        out.append(Check("key scopes", "fail", f"{type(exc).__name__}: {exc}"))
    for currency in settings.venue.currencies:
        try:
            facts = await venue.facts(currency)
        except FactsRefused as exc:
            out.append(Check(f"facts {currency}", "fail", str(exc)))
            continue
        perp = facts.perpetual
        out.append(
            Check(
                f"facts {currency}",
                "ok",
                f"{perp.name}: {perp.contract_size:g} USD a contract, min {perp.min_amount:g}, "
                f"tick {perp.tick_size:g}, {'inverse' if perp.inverse else 'linear'} "
                "(from the venue; settings agree or narrow)",
            )
        )
    return out


async def _ledger_checks(app: Any) -> list[Check]:
    from bot.audit import expected_position
    from bot.cycle import rebalance_once
    from bot.domain import DataError
    from bot.venues.errors import VenueError

    out: list[Check] = []
    for currency in app.settings.venue.currencies:
        hedge = app.settings.venue.facts[currency].perpetual
        try:
            positions = await app.venue.positions(currency)
        except (VenueError, DataError) as exc:
            out.append(Check(f"positions {currency}", "fail", f"{type(exc).__name__}: {exc}"))
            continue
        held = sum(p.size for p in positions if p.instrument.name == hedge)
        others = sorted(
            p.instrument.name
            for p in positions
            if not p.instrument.is_option and p.size and p.instrument.name != hedge
        )
        expected = expected_position(app.ledger, hedge)
        options = sum(1 for p in positions if p.instrument.is_option)
        if expected is None and held:
            out.append(
                Check(
                    f"positions {currency}",
                    "warn",
                    f"{hedge} {held:+,.0f} held, the "
                    "ledger knows none of it (first start on this account?)",
                )
            )
        elif expected is not None and abs(held - expected) > app.settings.risk.position_tolerance:
            out.append(
                Check(
                    f"positions {currency}",
                    "fail",
                    f"{hedge} {held:+,.0f} held, the "
                    f"ledger expects {expected:+,.0f}: traded outside hedgebot?",
                )
            )
        elif others:
            out.append(
                Check(
                    f"positions {currency}",
                    "warn",
                    f"futures hedgebot does not trade: {', '.join(others)}",
                )
            )
        else:
            out.append(
                Check(
                    f"positions {currency}",
                    "ok",
                    f"{options} option positions, {hedge} {held:+,.0f} as the ledger expects",
                )
            )
        daemon = _daemon_check(app, currency)
        out += [daemon, await _others_check(app, currency)]
        if daemon.status != "ok":  # a dry run beside it would read its orders mid-flight
            out.append(Check(f"plan {currency}", "ok", "not planned: the live daemon hedges it"))
            continue
        result = await rebalance_once(app.ctx, currency, dry_run=True)
        if result.plan is not None:
            p = result.plan
            side = "BUY" if p.trade_amount > 0 else "SELL"
            out.append(
                Check(
                    f"plan {currency}",
                    "ok",
                    f"first rebalance would {side} "
                    f"{abs(p.trade_amount):,.0f} {p.instrument} at ~{p.price:,.2f} "
                    f"(delta {p.delta_before:+.4f} -> {p.expected_delta_after:+.4f})",
                )
            )
        elif result.status == "skipped" or result.status == "failed":
            out.append(Check(f"plan {currency}", "fail", f"{result.status}: {result.reason}"))
        else:
            out.append(Check(f"plan {currency}", "ok", f"no trade: {result.reason}"))
    return out


def _daemon_check(app: Any, currency: str) -> Check:
    """Whether a live daemon holds the book's lease: a second ``hedgebot run`` would be
    refused while it lives (the lease clock is the wall clock, as the daemon's)."""
    from bot.lock import account_identity, book_key
    from bot.store.lease import LeaseStore

    book = book_key(account_identity(app.settings, app.paper), currency)
    holder = LeaseStore(app.ledger.engine).holder(book)
    name = f"daemon {currency}"
    if holder is not None and holder.expires_at > app.lease_clock.now():
        return Check(
            name, "warn", f"held by {holder.describe()}: a second `hedgebot run` is refused"
        )
    return Check(name, "ok", "no live daemon holds this book")


async def _others_check(app: Any, currency: str) -> Check:
    """Another hedgebot's open orders or trades (of the last day) on this venue account: the
    daemon would halt on them (see bot.exclusion); read only, nothing is recorded here. Trades
    from before the hedge's position baseline (less the fill lookback) are left out, as
    start-up leaves them: ``hedgebot db rebaseline`` accepted them."""
    from bot.domain import DataError
    from bot.reconcile import baseline_watch_start
    from bot.venues.errors import VenueError

    watch = app.ctx.watch
    name = f"other hedgebots {currency}"
    since = app.clock.now() - OTHERS_LOOKBACK
    accepted = baseline_watch_start(app.ctx, app.settings.venue.facts[currency].perpetual)
    if accepted is not None:
        since = max(since, accepted)
    try:
        orders = await app.venue.open_orders(currency)
        fills = await app.venue.fills(currency, since=since)
    except (VenueError, DataError) as exc:
        return Check(name, "fail", f"{type(exc).__name__}: {exc}")
    found = watch.others(orders, fills)
    seen = sorted({label for kind, label in found if kind == "order"})
    seen += sorted({label for kind, label in found if kind == "trade"} - set(seen))
    if not seen:
        return Check(name, "ok", "no other hedgebot's orders or trades on this account")
    ledgers = sorted({watch.labels.ledger_of(label) or "without an id" for label in seen})
    return Check(
        name,
        "fail",
        f"{len(seen)} order(s) or trade(s) of another hedgebot (ledger {', '.join(ledgers)};"
        f" first {seen[0]}), not in this ledger {watch.labels.ledger_id}: the daemon would"
        " halt; two ledgers on one account double every hedge",
    )
