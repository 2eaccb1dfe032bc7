"""Deribit's two request pools as token buckets, shared by the ccxt adapter and the sim server."""

from __future__ import annotations

import pytest

from bot.config import RateLimitSettings
from bot.venues.ratelimit import RateBuckets, TokenBucket


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_dry_bucket_says_how_long_until_its_next_token_and_takes_nothing() -> None:
    timer = Timer()
    bucket = TokenBucket(rate=4.0, burst=2, timer=timer)
    assert bucket.take()
    assert bucket.take()
    assert not bucket.take()
    assert bucket.seconds_to_token() == pytest.approx(0.25)
    timer.now = 0.25
    assert bucket.seconds_to_token() == 0.0
    assert bucket.take()
    assert not bucket.take()


def test_a_bucket_never_holds_more_than_its_burst_however_long_it_waited() -> None:
    timer = Timer()
    bucket = TokenBucket(rate=10.0, burst=3, timer=timer)
    timer.now = 3600.0
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (float("nan"), 1), (1.0, 0)])
def test_a_bucket_refuses_a_rate_or_burst_that_could_never_serve(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate=rate, burst=burst, timer=Timer())


def test_orders_and_cancels_draw_on_the_matching_engine_pool_and_reads_on_the_other() -> None:
    buckets = RateBuckets(RateLimitSettings(matching_burst=1, other_burst=1), Timer())
    for method in ("buy", "sell", "edit", "cancel", "cancel_all_by_currency", "cancel_by_label"):
        assert buckets.of(method) is buckets.matching
    for method in ("get_positions", "ticker", "get_order_state_by_label"):
        assert buckets.of(method) is buckets.other
    assert buckets.of("buy").take()
    assert not buckets.of("sell").take()
    assert buckets.of("get_positions").take()
