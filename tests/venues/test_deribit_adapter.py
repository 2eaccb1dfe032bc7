"""The Deribit adapter without a server: real recorded messages through the mappings (and through
ccxt's own parsers where the adapter uses them), the error table, local order checks, URL
safety, and retry/rate-limit behaviour over ccxt's real Deribit client whose HTTP transport is
replaced by a script (so ccxt's signing, parsing and error classification all run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt.async_support as ccxt
import numpy as np
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from bot.backtest.datafiles import shared_data
from bot.clock import FakeClock
from bot.config import DEFAULT_FACTS, RateLimitSettings, VenueSettings
from bot.domain import (
    DataError,
    InstrumentKind,
    Liquidity,
    OptionType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from bot.venues.base import Venue
from bot.venues.deribit import mapping as m
from bot.venues.deribit.adapter import (
    DeribitVenue,
    RetryPolicy,
    UnsafeUrl,
    build_client,
    clock_seconds,
    take_paced,
    venue_urls,
)
from bot.venues.errors import (
    AuthError,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from bot.venues.ratelimit import TokenBucket

DATA = shared_data() / "deribit"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def raw_message(module: str, fn: str) -> Any:
    for line in (DATA / "raw_api_messages_2022.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["test_module"] == module and row["test_fn"] == fn:
            message = row["message"]
            return json.loads(message) if isinstance(message, str) else message
    raise LookupError(f"{module}/{fn} not in the recorded messages")


def positions_example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "api_examples/http_get_positions.json").read_text())
    return data


PERP_ROW = {
    "tick_size": 0.5,
    "taker_commission": 0.0005,
    "settlement_period": "perpetual",
    "settlement_currency": "BTC",
    "quote_currency": "USD",
    "min_trade_amount": 10.0,
    "maker_commission": 0.0,
    "kind": "future",
    "is_active": True,
    "instrument_name": "BTC-PERPETUAL",
    "future_type": "reversed",
    "expiration_timestamp": 32503708800000,
    "creation_timestamp": 1534242287000,
    "counter_currency": "USD",
    "contract_size": 10.0,
    "base_currency": "BTC",
}
# ccxt's own documented example of a get_instruments option row (ccxt/deribit.py fetch_markets)
OPTION_ROW = {
    "tick_size": 0.0005,
    "taker_commission": 0.0003,
    "strike": 52000.0,
    "settlement_period": "month",
    "settlement_currency": "BTC",
    "quote_currency": "BTC",
    "option_type": "put",
    "min_trade_amount": 0.1,
    "maker_commission": 0.0003,
    "kind": "option",
    "is_active": True,
    "instrument_name": "BTC-24JUN22-52000-P",
    "expiration_timestamp": 1656057600000,
    "creation_timestamp": 1648199543000,
    "counter_currency": "USD",
    "contract_size": 1.0,
    "base_currency": "BTC",
}


def order_row(**over: Any) -> dict[str, Any]:
    """A ``private/buy`` order in Deribit's documented shape."""
    row: dict[str, Any] = {
        "order_id": "ETH-349249",
        "label": "hb-1-abc",
        "instrument_name": "BTC-PERPETUAL",
        "direction": "buy",
        "amount": 40.0,
        "filled_amount": 40.0,
        "order_state": "filled",
        "price": 30435.0,
        "average_price": 30435.0,
        "order_type": "limit",
        "time_in_force": "immediate_or_cancel",
        "post_only": False,
        "reduce_only": False,
        "creation_timestamp": 1654246806027,
        "last_update_timestamp": 1654246806030,
    }
    row.update(over)
    return row


def user_trade(**over: Any) -> dict[str, Any]:
    """A private trade: the recorded public perpetual trade plus the fields only we get."""
    public = raw_message("trade", "inverse_swap")["params"]["data"][0]
    row = {
        **public,
        "order_id": "ETH-349249",
        "label": "hb-1-abc",
        "fee": 0.00000049,
        "fee_currency": "BTC",
        "liquidity": "T",
        "order_type": "limit",
    }
    row.update(over)
    return row


# --- mapping of real messages ---------------------------------------------------------------


def test_documented_positions_row_maps_to_usd_size_average_price_and_venue_delta() -> None:
    row = positions_example()["result"][0]
    instrument = m.instrument_from_row(PERP_ROW, DEFAULT_FACTS["BTC"])
    client = ccxt.deribit()
    parsed = client.parse_position(row)  # what fetch_positions would give: info is the raw row
    position = m.position_from_row(parsed["info"], instrument)
    assert position.size == 50  # USD, not contracts * contractSize
    assert position.average_price == pytest.approx(7440.18)
    assert position.venue_delta == pytest.approx(0.006687487)
    assert position.instrument.kind is InstrumentKind.PERPETUAL


def test_flat_position_row_is_not_a_position_although_ccxt_calls_it_short() -> None:
    row = {**positions_example()["result"][0], "direction": "zero", "size": 0}
    assert ccxt.deribit().parse_position(row)["side"] == "short"
    assert m.is_flat(row)
    assert not m.is_flat(positions_example()["result"][0])


def test_instrument_rows_map_contract_size_step_tick_and_expiry_at_eight_utc() -> None:
    perp = m.instrument_from_row(PERP_ROW, DEFAULT_FACTS["BTC"])
    assert (perp.contract_size, perp.min_amount, perp.amount_step, perp.tick_size) == (
        10,
        10,
        10,
        0.5,
    )
    assert perp.expiry is None
    assert perp.inverse
    option = m.instrument_from_row(OPTION_ROW, DEFAULT_FACTS["BTC"])
    assert option.kind is InstrumentKind.OPTION
    assert option.option_type is OptionType.PUT
    assert option.strike == 52000
    assert option.expiry == datetime(2022, 6, 24, 8, 0, tzinfo=UTC)
    assert (option.min_amount, option.amount_step, option.tick_size) == (0.1, 0.1, 0.0005)


def test_settings_facts_fill_what_the_venue_row_leaves_out() -> None:
    row = {k: v for k, v in PERP_ROW.items() if k not in ("tick_size", "min_trade_amount")}
    perp = m.instrument_from_row(row, DEFAULT_FACTS["BTC"])
    assert (perp.tick_size, perp.min_amount, perp.amount_step) == (0.5, 10, 10)
    with pytest.raises(DataError, match="min_trade_amount"):
        m.instrument_from_row(row, None)


def test_book_summary_rows_without_mark_iv_are_refused_naming_the_field() -> None:
    rows = raw_message("open_interest", "inverse_future_all")["result"]
    with pytest.raises(m.FieldError) as caught:
        m.mark_from_summary(rows[0], NOW)
    assert caught.value.field == "mark_iv"
    assert caught.value.instrument == "BTC-24JUN22-30000-C"


def test_book_summary_option_row_gives_decimal_iv_forward_and_index() -> None:
    row = {**raw_message("open_interest", "option")["result"][0], "mark_iv": 86.54}
    mark = m.mark_from_summary(row, NOW)
    assert mark.mark_iv == pytest.approx(0.8654)
    assert mark.underlying_price == pytest.approx(1770.45)
    assert mark.index_price == pytest.approx(1768.89)  # estimated_delivery_price
    assert mark.mark_price == pytest.approx(0.037071)
    assert (mark.bid, mark.ask) == (0.0365, 0.0375)
    assert mark.timestamp == datetime.fromtimestamp(1654341866.165, tz=UTC)


def test_book_summary_option_with_empty_book_keeps_its_mark_and_has_no_bid() -> None:
    row = {**raw_message("open_interest", "inverse_future_all")["result"][1], "mark_iv": 70.0}
    mark = m.mark_from_summary(row, NOW)
    assert mark.bid is None
    assert mark.ask is None
    assert mark.mark_price == pytest.approx(1.98432769)


def test_future_summary_row_is_its_own_forward() -> None:
    row = raw_message("open_interest", "inverse_future")["result"][0]
    mark = m.mark_from_summary(row, NOW)
    assert mark.underlying_price == mark.mark_price == pytest.approx(29727.97)
    assert mark.mark_iv is None


def test_option_ticker_row_maps_like_a_summary_row() -> None:
    data = raw_message("ticker", "option")["params"]["data"]
    mark = m.mark_from_summary(data, NOW)
    assert mark.mark_iv == pytest.approx(0.677)
    assert mark.underlying_price == pytest.approx(30220.5)
    assert mark.index_price == pytest.approx(29939.43)


@pytest.mark.parametrize(
    ("field", "value"), [("mark_price", None), ("mark_price", "NaN"), ("underlying_price", -1.0)]
)
def test_bad_summary_field_raises_field_error(field: str, value: Any) -> None:
    row = {**raw_message("open_interest", "option")["result"][0], "mark_iv": 86.54, field: value}
    with pytest.raises(m.FieldError) as caught:
        m.mark_from_summary(row, NOW)
    assert caught.value.field == field


def test_perpetual_ticker_and_order_book_give_the_hedge_quote() -> None:
    quote = m.quote_from_ticker(raw_message("ticker", "inverse_swap")["params"]["data"])
    assert (quote.bid, quote.ask) == (29930.5, 29931.0)
    assert (quote.bid_size, quote.ask_size) == (149910.0, 62850.0)
    assert quote.mark == pytest.approx(29932.79)
    assert quote.index_price == pytest.approx(29930.44)
    book = m.quote_from_ticker(raw_message("l2_snapshot", "inverse_swap")["result"])
    assert (book.bid, book.ask, book.ask_size) == (30434.5, 30435.0, 198440.0)


def test_quote_with_an_empty_side_is_a_data_error() -> None:
    data = {**raw_message("ticker", "inverse_swap")["params"]["data"], "best_ask_price": None}
    with pytest.raises(DataError, match="best_ask_price"):
        m.quote_from_ticker(data)


def test_created_order_through_ccxt_parser_keeps_label_and_deribit_units() -> None:
    client = ccxt.deribit()
    parsed = client.parse_order(order_row())
    assert parsed["clientOrderId"] is None  # ccxt does not map Deribit's label
    state = m.order_from_row(parsed["info"])
    assert state.label == "hb-1-abc"
    assert state.status is OrderStatus.FILLED
    assert (state.amount, state.filled_amount, state.average_price) == (40, 40, 30435.0)
    assert state.side is Side.BUY
    assert state.order_type is OrderType.LIMIT


def test_market_order_price_and_unfilled_average_are_none() -> None:
    state = m.order_from_row(
        order_row(price="market_price", order_type="market", average_price=0, filled_amount=0)
    )
    assert state.price is None
    assert state.average_price is None
    assert state.order_type is OrderType.MARKET


def test_latest_of_orders_sharing_a_label_is_the_newest() -> None:
    old = order_row(order_id="1", creation_timestamp=1000)
    new = order_row(order_id="2", creation_timestamp=2000)
    assert m.latest_order([new, old]) == new
    assert m.latest_order([]) is None


def test_user_trade_maps_label_fee_and_liquidity() -> None:
    fill = m.fill_from_trade(user_trade())
    assert fill.trade_id == "137487241"
    assert fill.label == "hb-1-abc"
    assert fill.amount == 5580.0
    assert fill.price == 56168.0
    assert fill.fee == pytest.approx(4.9e-7)
    assert fill.fee_currency == "BTC"
    assert fill.liquidity is Liquidity.TAKER
    assert fill.index_price == pytest.approx(56173.74)
    parsed = ccxt.deribit().parse_trade(user_trade(liquidity="M"))
    assert parsed["takerOrMaker"] == "maker"
    assert m.fill_from_trade(parsed["info"]).liquidity is Liquidity.MAKER


def test_public_trade_is_not_one_of_our_fills() -> None:
    public = raw_message("trade", "inverse_swap")["params"]["data"][0]
    with pytest.raises(m.FieldError):
        m.fill_from_trade(public)


# --- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "write", "outcome"),
    [
        (ccxt.OrderNotFound("10004"), True, OrderNotFound),
        (ccxt.OrderNotFound("10010"), False, OrderNotFound),
        (ccxt.InvalidOrder('deribit {"error":{"code":11054}}'), True, OrderRejected),
        (ccxt.InvalidOrder('deribit {"error":{"code":11044}}'), True, OrderNotFound),
        (ccxt.InvalidOrder('deribit {"error":{"code":11008}}'), True, OrderNotFound),
        (ccxt.InsufficientFunds("10009"), True, OrderRejected),
        (ccxt.BadRequest("-32602"), False, OrderRejected),
        (ccxt.BadSymbol("nope"), True, OrderRejected),
        (ccxt.PermissionDenied("9999"), True, OrderRejected),
        (ccxt.AuthenticationError("13009"), False, AuthError),
        (ccxt.RequestTimeout("t"), True, OutcomeUnknown),
        (ccxt.NetworkError("n"), True, OutcomeUnknown),
        (ccxt.ExchangeNotAvailable("n"), True, OutcomeUnknown),
        (ccxt.RequestTimeout("t"), False, TransientError),
        (ccxt.NetworkError("n"), False, TransientError),
        (ccxt.ExchangeNotAvailable("10040"), False, TransientError),
        (ccxt.OnMaintenance("11051"), False, TransientError),
        (ccxt.DDoSProtection('deribit {"error":{"code":10028}}'), True, RateLimited),
        (ccxt.DDoSProtection("10028"), False, RateLimited),
        (ccxt.RateLimitExceeded("429"), False, RateLimited),
        (ccxt.ExchangeError("11094"), True, OutcomeUnknown),
        (ccxt.ExchangeError("11094"), False, TransientError),
    ],
)
def test_ccxt_error_maps_to_one_venue_outcome(exc: Exception, write: bool, outcome: type) -> None:
    assert type(m.map_error(exc, write=write)) is outcome


def test_rejection_carries_the_deribit_code() -> None:
    body = '{"jsonrpc":"2.0","error":{"message":"post_only_reject","code":11054}}'
    error = m.map_error(ccxt.InvalidOrder("deribit " + body), write=True)
    assert isinstance(error, OrderRejected)
    assert error.code == 11054


# --- local order checks -------------------------------------------------------------------------


def _request(**over: Any) -> OrderRequest:
    base: dict[str, Any] = {
        "label": "hb-1",
        "instrument_name": "BTC-PERPETUAL",
        "side": Side.BUY,
        "amount": 40.0,
        "price": 30435.0,
    }
    base.update(over)
    return OrderRequest(**base)


PERP = m.instrument_from_row(PERP_ROW, DEFAULT_FACTS["BTC"])
OPTION = m.instrument_from_row(OPTION_ROW, DEFAULT_FACTS["BTC"])


def test_label_of_64_characters_passes_and_65_is_rejected() -> None:
    m.check_order(_request(label="x" * 64), PERP)
    with pytest.raises(OrderRejected, match="label"):
        m.check_order(_request(label="x" * 65), PERP)


@pytest.mark.parametrize(
    ("amount", "why"), [(25.0, "multiple"), (5.0, "minimum"), (float("nan"), "positive")]
)
def test_amount_off_the_step_is_rejected_not_truncated(amount: float, why: str) -> None:
    with pytest.raises(OrderRejected, match=why):
        m.check_order(_request(amount=amount), PERP)


def test_option_amount_with_float_dust_is_on_the_step() -> None:
    m.check_order(_request(instrument_name=OPTION.name, amount=0.1 + 0.2, price=0.0105), OPTION)


def test_limit_price_off_the_tick_is_rejected() -> None:
    with pytest.raises(OrderRejected, match="tick"):
        m.check_order(_request(price=30435.3), PERP)


def test_market_post_only_is_rejected() -> None:
    with pytest.raises(OrderRejected, match="post-only"):
        m.check_order(_request(order_type=OrderType.MARKET, price=None, post_only=True), PERP)


def test_order_params_carry_label_post_only_reduce_only_and_time_in_force() -> None:
    params = m.order_params(
        _request(post_only=True, reduce_only=True, time_in_force=TimeInForce.IOC)
    )
    assert params == {"label": "hb-1", "postOnly": True, "reduceOnly": True, "timeInForce": "IOC"}


# --- URL safety and client construction ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rest", "ws"),
    [
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123", "ws://127.0.0.1:8123/ws/api/v2"),
        ("http://localhost:9/", "http://localhost:9", "ws://localhost:9/ws/api/v2"),
        (
            "https://test.deribit.com",
            "https://test.deribit.com",
            "wss://test.deribit.com/ws/api/v2",
        ),
    ],
)
def test_loopback_and_https_deribit_urls_are_accepted(url: str, rest: str, ws: str) -> None:
    assert venue_urls(url) == {"rest": rest, "ws": ws}


@pytest.mark.parametrize(
    "url",
    [
        "http://www.deribit.com",
        "https://deribit.com.evil.example",
        "https://notderibit.com",
        "http://10.0.0.1:8000",
        "https://user:pw@127.0.0.1:8000",
        "ftp://127.0.0.1",
        "http://127.0.0.1:8000/?x=1",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        venue_urls(url)


def test_testnet_is_the_default_and_mainnet_must_be_explicit() -> None:
    assert build_client(VenueSettings()).urls["api"]["rest"] == "https://test.deribit.com"
    mainnet = build_client(VenueSettings(network="mainnet"))
    assert mainnet.urls["api"]["rest"] == "https://www.deribit.com"
    custom = build_client(VenueSettings(network="custom", url="http://127.0.0.1:8765"))
    assert custom.urls["api"] == {
        "rest": "http://127.0.0.1:8765",
        "ws": "ws://127.0.0.1:8765/ws/api/v2",
    }
    with pytest.raises(UnsafeUrl):
        build_client(VenueSettings(network="custom", url="https://evil.example"))
    with pytest.raises(UnsafeUrl):
        build_client(VenueSettings(network="custom"))


def test_secrets_reach_ccxt_but_not_the_log() -> None:
    settings = VenueSettings(api_key=SecretStr("key-id-123"), api_secret=SecretStr("s3cr3t-xyz"))
    with capture_logs() as logs:
        venue = DeribitVenue(settings, FakeClock(NOW), rng=np.random.default_rng(1))
    assert (venue._ex.apiKey, venue._ex.secret) == ("key-id-123", "s3cr3t-xyz")
    assert "s3cr3t-xyz" not in repr(logs)
    assert "key-id-123" not in repr(logs)


# --- the adapter over ccxt's real client with a scripted transport ------------------------------

Outcome = dict[str, Any] | Exception | Callable[[dict[str, str]], Any]


class ScriptedDeribit(ccxt.deribit):  # type: ignore[misc]
    """ccxt's Deribit client whose HTTP layer answers from ``routes`` (path -> outcomes).

    A dict outcome is a JSON-RPC body (``{"result": ...}`` or ``{"error": ...}``) and goes
    through ccxt's own ``handle_errors``; an exception is raised as the transport would.
    """

    def __init__(self, routes: dict[str, list[Outcome]]) -> None:
        super().__init__({"apiKey": "k", "secret": "s", "enableRateLimit": False})
        self.urls["api"] = {"rest": "http://127.0.0.1:9"}
        self.routes = routes
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def fetch(
        self, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        parts = urlsplit(url)
        path = parts.path.removeprefix("/api/v2/")
        params = dict(parse_qsl(parts.query))
        self.calls.append((path, params))
        script = self.routes[path]
        outcome = script.pop(0) if len(script) > 1 else script[0]
        if callable(outcome) and not isinstance(outcome, Exception):
            outcome = outcome(params)
        if isinstance(outcome, Exception):
            raise outcome
        response = {"jsonrpc": "2.0", **outcome}
        self.handle_errors(200, "OK", url, method, {}, json.dumps(response), response, {}, None)
        return response

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.calls if p == path)


MARKET_ROUTES: dict[str, list[Outcome]] = {
    "public/get_currencies": [{"result": [{"currency": "BTC", "currency_long": "Bitcoin"}]}],
    "public/get_instruments": [{"result": [PERP_ROW, OPTION_ROW]}],
}


def scripted_venue(
    routes: dict[str, list[Outcome]], retry: RetryPolicy | None = None
) -> tuple[DeribitVenue, ScriptedDeribit, FakeClock]:
    client = ScriptedDeribit({**MARKET_ROUTES, **routes})
    clock = FakeClock(NOW)
    venue = DeribitVenue(
        VenueSettings(),
        clock,
        retry=retry or RetryPolicy(attempts=3, total_seconds=30.0),
        rng=np.random.default_rng(7),
        client=client,
        measure_clock=False,  # the scripts answer the reads under test only
    )
    return venue, client, clock


def test_deribit_venue_implements_the_venue_protocol() -> None:
    venue, _, _ = scripted_venue({})
    assert isinstance(venue, Venue)


async def test_place_order_sends_label_post_only_and_reject_post_only_through_ccxt() -> None:
    venue, client, _ = scripted_venue(
        {
            "private/buy": [
                {
                    "result": {
                        "order": order_row(
                            order_state="open", filled_amount=0, average_price=0, post_only=True
                        ),
                        "trades": [],
                    }
                }
            ]
        }
    )
    state = await venue.place_order(_request(post_only=True, amount=40.0))
    sent = dict(client.calls)["private/buy"]
    assert sent["label"] == "hb-1"
    assert sent["amount"] == "40"
    assert sent["post_only"] == "true"
    assert sent["reject_post_only"] == "true"
    assert state.status is OrderStatus.OPEN
    assert state.post_only


async def test_amount_off_the_step_is_rejected_before_any_order_is_sent() -> None:
    venue, client, _ = scripted_venue({"private/buy": [RuntimeError("must not be called")]})
    with pytest.raises(OrderRejected):
        await venue.place_order(_request(amount=25.0))
    assert client.count("private/buy") == 0


async def test_post_only_reject_from_venue_is_order_rejected_with_code() -> None:
    error = {"error": {"message": "post_only_reject", "code": 11054}}
    venue, _, _ = scripted_venue({"private/buy": [error]})
    with pytest.raises(OrderRejected) as caught:
        await venue.place_order(_request(post_only=True))
    assert caught.value.code == 11054


async def test_create_order_timeout_is_outcome_unknown_and_sent_only_once() -> None:
    venue, client, _ = scripted_venue({"private/buy": [ccxt.RequestTimeout("read timed out")]})
    with pytest.raises(OutcomeUnknown):
        await venue.place_order(_request())
    assert client.count("private/buy") == 1


async def test_create_order_rate_limited_is_not_retried() -> None:
    error = {"error": {"message": "too_many_requests", "code": 10028}}
    venue, client, _ = scripted_venue({"private/buy": [error]})
    with pytest.raises(RateLimited):
        await venue.place_order(_request())
    assert client.count("private/buy") == 1


async def test_cancel_of_a_gone_order_is_order_not_found() -> None:
    error = {"error": {"message": "order_not_found", "code": 10004}}
    venue, _, _ = scripted_venue({"private/cancel": [error]})
    with pytest.raises(OrderNotFound):
        await venue.cancel_order("ETH-1")


async def test_read_rate_limited_twice_is_retried_then_answers() -> None:
    limited = {"error": {"message": "too_many_requests", "code": 10028}}
    summary = positions_example()
    venue, client, clock = scripted_venue(
        {
            "private/get_positions": [limited, limited, {"result": summary["result"]}],
            "public/get_instrument": [{"result": PERP_ROW}],
        }
    )
    with capture_logs() as logs:
        positions = await venue.positions("BTC")
    assert [p.size for p in positions] == [50]
    assert client.count("private/get_positions") == 3
    assert clock.now() >= NOW + timedelta(seconds=2)  # waited at least retry_after twice
    assert [e["event"] for e in logs].count("venue_read_retry") == 2


async def test_read_failing_every_time_gives_up_after_the_attempt_bound() -> None:
    venue, client, _ = scripted_venue({"public/ticker": [ccxt.RequestTimeout("t")]})
    with pytest.raises(TransientError):
        await venue.quote("BTC-PERPETUAL")
    assert client.count("public/ticker") == 3


async def test_read_retries_stop_at_the_clock_deadline() -> None:
    policy = RetryPolicy(attempts=100, total_seconds=5.0, base_seconds=4.0, cap_seconds=4.0)
    venue, client, clock = scripted_venue({"public/ticker": [ccxt.NetworkError("reset")]}, policy)
    with pytest.raises(TransientError):
        await venue.quote("BTC-PERPETUAL")
    assert 2 <= client.count("public/ticker") < 100
    assert clock.now() - NOW < timedelta(seconds=10)


async def test_authentication_error_is_not_retried() -> None:
    error = {"error": {"message": "unauthorized", "code": 13009}}
    venue, client, _ = scripted_venue({"private/get_positions": [error]})
    with pytest.raises(AuthError):
        await venue.positions("BTC")
    assert client.count("private/get_positions") == 1


async def test_marks_read_all_options_in_one_call_and_skip_bad_rows_with_a_warning() -> None:
    good = {**raw_message("open_interest", "option")["result"][0], "mark_iv": 86.54}
    bad = raw_message("open_interest", "inverse_future_all")["result"][0]  # no mark_iv
    future = raw_message("open_interest", "inverse_future")["result"][0]

    def summary(params: dict[str, str]) -> dict[str, Any]:
        return {"result": [good, bad] if params["kind"] == "option" else [future]}

    venue, client, _ = scripted_venue({"public/get_book_summary_by_currency": [summary]})
    with capture_logs() as logs:
        marks = await venue.marks("BTC")
    assert [x.instrument_name for x in marks] == ["ETH-24JUN22-1600-P", "BTC-24JUN22"]
    assert client.count("public/get_book_summary_by_currency") == 2
    skipped = [e for e in logs if e["event"] == "mark_skipped"]
    assert skipped == [
        {
            "event": "mark_skipped",
            "log_level": "warning",
            "instrument": "BTC-24JUN22-30000-C",
            "field": "mark_iv",
            "value": None,
            "why": "expired at 2022-06-24 08:00 UTC: no IV to solve",
        }
    ]


async def test_account_reads_deribit_fields_from_fetch_balance_info() -> None:
    summary = {
        "currency": "BTC",
        "equity": 10.5,
        "balance": 10.0,
        "available_funds": 9.0,
        "delta_total": -0.25,
        "maintenance_margin": 0.1,
    }
    venue, client, _ = scripted_venue({"private/get_account_summary": [{"result": summary}]})
    account = await venue.account("BTC")
    assert (account.equity, account.balance, account.available) == (10.5, 10.0, 9.0)
    assert account.delta_total == -0.25
    assert dict(client.calls)["private/get_account_summary"]["currency"] == "BTC"


async def test_positions_skip_zero_rows_and_describe_instruments_no_longer_listed() -> None:
    live = positions_example()["result"][0]
    option = {
        "instrument_name": "BTC-24JUN22-52000-P",
        "direction": "sell",
        "size": -1.5,
        "average_price": 0.02,
        "delta": 0.3,
        "kind": "option",
    }
    zero = {**live, "instrument_name": "BTC-24JUN22", "direction": "zero", "size": 0}
    venue, client, _ = scripted_venue(
        {
            "private/get_positions": [{"result": [live, option, zero]}],
            "public/get_instruments": [{"result": [PERP_ROW]}],  # the option has expired
            "public/get_instrument": [{"result": OPTION_ROW}],
        }
    )
    positions = await venue.positions("BTC")
    assert [(p.instrument.name, p.size) for p in positions] == [
        ("BTC-PERPETUAL", 50),
        ("BTC-24JUN22-52000-P", -1.5),
    ]
    assert positions[1].instrument.is_option
    assert client.count("public/get_instruments") == 1
    assert [
        p["instrument_name"] for path, p in client.calls if path == "public/get_instrument"
    ] == ["BTC-24JUN22-52000-P"]
    await venue.positions("BTC")
    assert client.count("public/get_instruments") == 1  # known instruments are not re-read


async def test_order_by_label_returns_newest_and_none_when_venue_has_none() -> None:
    rows = [
        order_row(order_id="1", creation_timestamp=1),
        order_row(order_id="2", creation_timestamp=2),
    ]

    def by_label(params: dict[str, str]) -> dict[str, Any]:
        return {"result": rows if params["label"] == "hb-1-abc" else []}

    venue, _, _ = scripted_venue({"private/get_order_state_by_label": [by_label]})
    found = await venue.order_by_label("BTC", "hb-1-abc")
    assert found is not None
    assert found.venue_order_id == "2"
    assert await venue.order_by_label("BTC", "hb-unknown") is None


async def test_fills_page_by_timestamp_dedupe_and_return_oldest_first() -> None:
    t0 = 1_767_614_400_000  # 2026-01-05 12:00 UTC
    trades = [user_trade(trade_id=str(i), timestamp=t0 + 1000 * (i // 2)) for i in range(5)]
    pages = [
        {"result": {"trades": trades[:3], "has_more": True}},
        {"result": {"trades": trades[2:], "has_more": False}},  # starts again at trades[2]'s ms
    ]
    venue, client, _ = scripted_venue({"private/get_user_trades_by_currency_and_time": pages})
    fills = await venue.fills("BTC", since=NOW)
    assert [f.trade_id for f in fills] == ["0", "1", "2", "3", "4"]
    starts = [p["start_timestamp"] for path, p in client.calls if "user_trades" in path]
    assert starts == [str(t0), str(t0 + 1000)]


async def test_fills_reaching_back_past_a_day_read_the_historical_store_then_the_recent_one() -> (
    None
):
    """Deribit serves trades older than 24 h only with ``historical`` and indexes new ones there
    after a delay: both stores are read and merged, and a recent page the historical store
    already gave still moves the window on (trade 3 comes after it)."""
    t0 = m.to_ms(NOW - timedelta(days=2))
    recent = m.to_ms(NOW - timedelta(minutes=5))
    old = [user_trade(trade_id=str(i), timestamp=t0 + 1000 * i) for i in range(2)]
    new = [user_trade(trade_id=str(i), timestamp=recent + 1000 * i) for i in range(2, 4)]
    pages = [
        {"result": {"trades": [*old, new[0]], "has_more": False}},  # historical: 3 not indexed
        {"result": {"trades": [new[0]], "has_more": True}},  # recent: already had it
        {"result": {"trades": new, "has_more": False}},
    ]
    venue, client, _ = scripted_venue({"private/get_user_trades_by_currency_and_time": pages})
    fills = await venue.fills("BTC", since=NOW - timedelta(days=2))
    assert [f.trade_id for f in fills] == ["0", "1", "2", "3"]
    calls = [p for path, p in client.calls if "user_trades" in path]
    assert [c["historical"] for c in calls] == ["true", "false", "false"]
    assert calls[2]["start_timestamp"] == str(recent + 2000)


async def test_fills_of_the_last_day_read_only_the_recent_store() -> None:
    pages = [{"result": {"trades": [], "has_more": False}}]
    venue, client, _ = scripted_venue({"private/get_user_trades_by_currency_and_time": pages})
    assert await venue.fills("BTC", since=NOW - timedelta(hours=12)) == []
    calls = [p for path, p in client.calls if "user_trades" in path]
    assert [c["historical"] for c in calls] == ["false"]


async def test_token_bucket_lets_a_burst_through_then_paces_on_the_clock() -> None:
    clock = FakeClock(NOW)
    bucket = TokenBucket(rate=5.0, burst=20.0, timer=clock_seconds(clock))
    for _ in range(20):
        await take_paced(bucket, clock)
    assert clock.now() == NOW
    await take_paced(bucket, clock)
    assert clock.now() - NOW == timedelta(seconds=0.2)


async def test_matching_engine_calls_are_paced_by_their_own_bucket() -> None:
    client = ScriptedDeribit(
        {**MARKET_ROUTES, "private/cancel": [{"result": order_row(order_state="cancelled")}]}
    )
    clock = FakeClock(NOW)
    limits = RateLimitSettings(matching_per_second=2.0, matching_burst=1)
    venue = DeribitVenue(
        VenueSettings(rate_limits=limits), clock, rng=np.random.default_rng(1), client=client
    )
    for _ in range(3):
        await venue.cancel_order("ETH-349249")
    assert clock.now() - NOW == timedelta(seconds=1.0)
