"""The Greeks engine against Deribit's own numbers, calculus, and first-principles hedging P&L."""

from __future__ import annotations

import ast
import csv
import math
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from bot import black76_kernel
from bot.backtest.datafiles import shared_data
from bot.domain import (
    Account,
    Book,
    DataError,
    Instrument,
    InstrumentKind,
    Mark,
    OptionType,
    PortfolioGreeks,
    Position,
    Quote,
    TargetMode,
)
from bot.greeks import (
    OptionGreeks,
    black76,
    deribit_expiry,
    greeks_buffer,
    portfolio_greeks,
    settlement_factor,
    settlement_factor_tau,
    year_fraction,
)

Array = npt.NDArray[np.float64]
DATA = shared_data() / "deribit"
CHAINS = ("2020-05-14", "2020-05-21")
MS_PER_YEAR = 365 * 86_400_000
DERIBIT_ROUNDING = 1e-5  # Deribit prints greeks to 5 decimals


# --------------------------------------------------------------------------- Deribit's chains


@dataclass(frozen=True)
class Chain:
    """One recorded Deribit BTC option chain with the venue's own greeks."""

    name: str
    forward: Array
    index: Array
    strike: Array
    tau: Array
    sigma: Array
    is_call: npt.NDArray[np.bool_]
    mark_coin: Array
    deribit: dict[str, Array]

    def __len__(self) -> int:
        return len(self.strike)


def load_chain(day: str) -> Chain:
    path = DATA / f"btc_option_chain_with_greeks_{day}.csv"
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    greeks = [ast.literal_eval(r["greeks"]) for r in rows]

    def col(key: str) -> Array:
        return np.array([float(r[key]) for r in rows])

    return Chain(
        name=day,
        forward=col("underlying_price"),
        index=col("index_price"),
        strike=col("strike"),
        tau=(col("expiration_timestamp") - col("timestamp")) / MS_PER_YEAR,
        sigma=col("mark_iv") / 100.0,
        is_call=np.array([r["option_type"] == "call" for r in rows]),
        mark_coin=col("mark_price"),
        deribit={k: np.array([g[k] for g in greeks]) for k in greeks[0]},
    )


@pytest.fixture(scope="module", params=CHAINS)
def chain(request: pytest.FixtureRequest) -> Chain:
    return load_chain(request.param)


def engine(c: Chain) -> OptionGreeks:
    return black76(c.forward, c.strike, c.tau, c.sigma, c.is_call)


def far_from_expiry(c: Chain) -> npt.NDArray[np.bool_]:
    return c.tau > 2.0 / 365.0


def assert_covers_most_of_chain(
    c: Chain, mask: npt.NDArray[np.bool_], record: Callable[[str, object], None]
) -> None:
    covered = int(mask.sum())
    record(f"options_covered_{c.name}", f"{covered}/{len(c)}")
    # 2020-05-14: 228 of 310; 2020-05-21: 230 of 326. The rest expire within two days and are
    # covered by the near-expiry theta test below.
    assert covered > 2 * len(c) / 3, f"only {covered} of {len(c)} options more than 2 days out"


def rel_err(ours: Array, theirs: Array, floor: float) -> Array:
    """Relative error, measured against ``floor`` for values too small for a relative one."""
    return np.abs(ours - theirs) / np.maximum(np.abs(theirs), floor)


def test_black76_delta_matches_deribit_within_1e4_for_every_option_beyond_two_days(
    chain: Chain, record_property: Callable[[str, object], None]
) -> None:
    far = far_from_expiry(chain)
    assert_covers_most_of_chain(chain, far, record_property)
    err = np.abs(engine(chain).delta - chain.deribit["delta"])[far]
    assert err.max() < 1e-4, f"{chain.name}: worst delta error {err.max():.2e}"


@pytest.mark.parametrize("greek", ["vega", "theta", "rho"])
def test_black76_vega_theta_and_rho_match_deribit_within_half_a_percent_beyond_two_days(
    chain: Chain, greek: str, record_property: Callable[[str, object], None]
) -> None:
    # Relative 0.5%; below 0.004 USD the 5-decimal rounding of Deribit's figure dominates, so
    # the error is measured against that absolute floor (0.5% of 0.004 = 2 rounding units).
    far = far_from_expiry(chain)
    assert_covers_most_of_chain(chain, far, record_property)
    ours = getattr(engine(chain), greek)
    err = rel_err(ours, chain.deribit[greek], floor=4 * DERIBIT_ROUNDING / 0.01)[far]
    assert err.max() < 0.005, f"{chain.name}: worst {greek} error {err.max():.2%}"


def test_black76_gamma_matches_deribit_to_its_five_printed_decimals(chain: Chain) -> None:
    err = np.abs(engine(chain).gamma - chain.deribit["gamma"])[far_from_expiry(chain)]
    assert err.max() <= 0.6 * DERIBIT_ROUNDING


def test_mark_price_in_coin_is_the_black76_usd_price_divided_by_the_forward(
    chain: Chain, record_property: Callable[[str, object], None]
) -> None:
    # Deribit's mark and mark_iv are not sampled at exactly the same instant: the median error
    # is ~5e-6 BTC, the worst within 0.3% of the mark (or 1e-4 BTC, a fifth of a tick).
    far = far_from_expiry(chain)
    assert_covers_most_of_chain(chain, far, record_property)
    g = engine(chain)
    err = np.abs(g.price_coin - chain.mark_coin)[far]
    assert np.median(err) < 1e-5
    assert np.all(err <= np.maximum(0.003 * chain.mark_coin[far], 1e-4))
    by_index = np.abs(g.price_usd / chain.index - chain.mark_coin)[far]
    assert np.median(by_index) > 10 * np.median(err), "forward and index must be told apart"


def test_theta_near_expiry_is_deribits_remaining_lifetime_theta_capped_at_the_premium(
    chain: Chain,
) -> None:
    # Options within two days of expiry (0.1 to 1.4 days here). Deribit's shown theta is the
    # analytic day rate times min(1, days left), never beyond the whole premium; the worst
    # error (2%) is on 2-hour options whose mark and timestamp are a few seconds apart.
    near = ~far_from_expiry(chain)
    assert near.sum() > 50
    g = engine(chain)
    theirs = chain.deribit["theta"][near]
    assert rel_err(g.theta[near], theirs, floor=0.01).max() < 0.025
    plain_rate = rel_err(g.theta_rate[near], theirs, floor=0.01)
    assert (plain_rate > 0.5).sum() > 20, "the analytic rate alone must not match"


# --------------------------------------------------------------------------- calculus and parity


def random_options(n: int, seed: int = 3) -> tuple[Array, Array, Array, Array]:
    rng = np.random.default_rng(seed)
    forward = rng.uniform(20_000.0, 120_000.0, n)
    strike = forward * np.exp(rng.normal(0.0, 0.25, n))
    tau = rng.uniform(3.0 / 365.0, 1.5, n)
    sigma = rng.uniform(0.2, 1.5, n)
    return forward, strike, tau, sigma


@pytest.mark.parametrize("rate", [0.0, 0.05])
def test_put_call_parity_holds_for_price_delta_gamma_and_vega(rate: float) -> None:
    F, K, t, s = random_options(2_000)
    c = black76(F, K, t, s, True, rate=rate)
    p = black76(F, K, t, s, False, rate=rate)
    df = np.exp(-rate * t)
    assert np.all(np.abs(c.price_usd - p.price_usd - df * (F - K)) < 1e-10 * F)
    np.testing.assert_allclose(c.delta - p.delta, df, atol=1e-12)
    np.testing.assert_allclose(c.gamma, p.gamma, rtol=1e-12)
    np.testing.assert_allclose(c.vega, p.vega, rtol=1e-12)


@pytest.mark.parametrize("is_call", [True, False])
def test_greeks_are_the_derivatives_of_the_price_in_deribits_units(is_call: bool) -> None:
    F, K, t, s = random_options(500)
    g = black76(F, K, t, s, is_call)

    def price(f: Array = F, tau: Array = t, sig: Array = s) -> Array:
        return black76(f, K, tau, sig, is_call).price_usd

    h = 1e-5 * F
    np.testing.assert_allclose(g.delta, (price(F + h) - price(F - h)) / (2 * h), atol=1e-8)
    h = 1e-4 * F
    gamma_fd = (price(F + h) - 2 * price() + price(F - h)) / h**2
    np.testing.assert_allclose(g.gamma, gamma_fd, rtol=1e-3, atol=1e-9)
    dv = 1e-5
    vega_fd = (price(sig=s + dv) - price(sig=s - dv)) / (2 * dv) / 100.0  # per vol point
    np.testing.assert_allclose(g.vega, vega_fd, rtol=1e-5, atol=1e-8)
    dt = 1e-6
    theta_fd = -(price(tau=t + dt) - price(tau=t - dt)) / (2 * dt) / 365.0  # per calendar day
    np.testing.assert_allclose(g.theta_rate, theta_fd, rtol=1e-5, atol=1e-7)


def test_rho_is_the_spot_rate_sensitivity_per_percent_like_deribit() -> None:
    # Deribit's K·tau·N(d2)/100 is d price / d rate holding spot S = F·exp(-r·tau) fixed.
    F, K, t, s = random_options(300)
    spot = F
    dr = 1e-6

    def price(r: float) -> Array:
        return black76(spot * np.exp(r * t), K, t, s, True, rate=r).price_usd

    rho_fd = (price(dr) - price(-dr)) / (2 * dr) / 100.0
    np.testing.assert_allclose(black76(F, K, t, s, True).rho, rho_fd, rtol=1e-5, atol=1e-7)


def test_net_delta_is_the_premium_adjusted_delta_of_the_coin_price() -> None:
    # Holding one inverse option is worth C/F coin; F·d(C/F)/dF = delta - C/F = net delta.
    F, K, t, s = random_options(500, seed=11)
    for is_call in (True, False):
        g = black76(F, K, t, s, is_call)
        np.testing.assert_allclose(g.price_coin, g.price_usd / F, rtol=1e-15)
        np.testing.assert_allclose(g.net_delta, g.delta - g.price_coin, atol=1e-15)
        h = 1e-5 * F
        up = black76(F + h, K, t, s, is_call).price_coin
        down = black76(F - h, K, t, s, is_call).price_coin
        np.testing.assert_allclose(g.net_delta, F * (up - down) / (2 * h), atol=1e-8)


def test_shown_theta_never_exceeds_the_premium() -> None:
    F, K, t, s = random_options(5_000, seed=5)
    t = t / 20.0  # many short-dated options, some under a day
    g = black76(F, K, t, s, K > F)  # out of the money: small premiums
    assert np.all(g.theta >= -g.price_usd)
    assert np.any(g.theta > g.theta_rate), "the cap must bind somewhere in this sample"


def test_arrays_broadcast_over_paths_and_legs_like_one_option_at_a_time() -> None:
    paths = np.array([[80_000.0], [90_000.0], [100_000.0]])  # (paths, 1)
    strikes = np.array([85_000.0, 90_000.0, 95_000.0, 90_000.0])  # (legs,)
    calls = np.array([True, True, False, False])
    g = black76(paths, strikes, 7 / 365, 0.6, calls)
    assert g.delta.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            one = black76(paths[i, 0], strikes[j], 7 / 365, 0.6, calls[j])
            assert g.net_delta[i, j] == pytest.approx(float(one.net_delta), abs=1e-13)
            assert g.theta[i, j] == pytest.approx(float(one.theta), rel=1e-12)


def test_large_inputs_run_in_parallel_chunks_with_the_same_results_as_small_ones() -> None:
    n = black76_kernel.PARALLEL_MIN + 1  # on the threads, with a ragged tail
    F, K, t, s = random_options(n, seed=9)
    t[::7] = -1.0  # expired options scattered through every chunk
    calls = np.arange(F.size) % 3 == 0
    big = black76(F, K, t, s, calls)
    for lo in (0, 32_760, black76_kernel.BLOCK * 3 - 1, n - 1):
        part = black76(F[lo : lo + 1], K[lo : lo + 1], t[lo : lo + 1], s[lo : lo + 1], calls[lo])
        for field in OptionGreeks.__dataclass_fields__:
            small = getattr(part, field)[0]
            assert getattr(big, field)[lo] == pytest.approx(small, rel=1e-13, abs=1e-15), field


@pytest.mark.parametrize(
    "n", [1, 1_000, black76_kernel.BLOCK * 2 + 5, black76_kernel.PARALLEL_MIN + 1]
)
def test_black76_into_a_reused_buffer_is_bit_identical_to_the_allocating_call(n: int) -> None:
    F, K, t, s = random_options(n, seed=11)
    t[::5] = -1.0  # expired options too
    calls = np.arange(n) % 2 == 0
    buf = greeks_buffer(n)
    buf.fill(np.nan)  # stale contents must not leak into the result
    for rate in (0.0, 0.03):
        fresh = black76(F, K, t, s, calls, rate)
        reused = black76(F, K, t, s, calls, rate, out=buf)
        for field in OptionGreeks.__dataclass_fields__:
            a, b = getattr(fresh, field), getattr(reused, field)
            np.testing.assert_array_equal(a, b, err_msg=field, strict=True)
            assert np.shares_memory(b, buf), field


def test_black76_into_a_buffer_broadcasts_like_the_allocating_call() -> None:
    paths = np.array([[88_000.0], [90_000.0], [93_000.0]])
    strikes = np.array([85_000.0, 95_000.0])
    calls = np.array([True, False])
    buf = greeks_buffer((3, 2))
    got = black76(paths, strikes, 7 / 365, 0.6, calls, out=buf)
    want = black76(paths, strikes, 7 / 365, 0.6, calls)
    assert got.delta.shape == (3, 2)
    np.testing.assert_array_equal(got.theta, want.theta)
    np.testing.assert_array_equal(got.gamma, want.gamma)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.empty((9, 4)), "shape"),
        (np.empty((8, 3)), "shape"),
        (np.empty((9, 3), dtype=np.float32), "float64"),
        (np.empty((3, 9)).T, "C-contiguous"),
        ([[0.0] * 3] * 9, "numpy array"),
    ],
)
def test_black76_rejects_an_out_it_cannot_fill_with_a_clear_error(
    out: object, message: str
) -> None:
    F, K, t, s = random_options(3, seed=2)
    with pytest.raises(ValueError, match=message):
        black76(F, K, t, s, True, out=out)  # type: ignore[arg-type]


def test_black76_rejects_an_out_that_overlaps_its_inputs() -> None:
    buf = greeks_buffer(3)
    buf[:] = 1.0
    read_only = greeks_buffer(3)
    read_only.flags.writeable = False
    F, K, t, s = random_options(3, seed=2)
    with pytest.raises(ValueError, match="overlap"):
        black76(buf[0], K, t, s, True, out=buf)
    with pytest.raises(ValueError, match="writeable"):
        black76(F, K, t, s, True, out=read_only)


def test_prices_and_greeks_keep_their_precision_deep_in_the_tails() -> None:
    # |d| from 0 to beyond 37, where exp(-d1²/2) leaves the normal floats: the shared-exp
    # normal CDF against scipy's, on both sides of every branch of the rational approximations.
    from scipy.special import ndtr

    d1 = np.concatenate([np.linspace(-45.0, 45.0, 9_001), [-3.0, 3.0, -5.66, 5.66, 0.0]])
    sst = np.full_like(d1, 0.4)
    F = np.full_like(d1, 50_000.0)
    K = F * np.exp(-(d1 - 0.5 * sst) * sst)  # the strike that gives this d1
    t = np.full_like(d1, 0.25)
    s = sst / np.sqrt(t)
    for is_call, w in ((True, 1.0), (False, -1.0)):
        g = black76(F, K, t, s, is_call)
        n1, n2 = ndtr(w * d1), ndtr(w * (d1 - sst))
        price = np.maximum(w * (F * n1 - K * n2), 0.0)
        big = price > 1e-250  # deep out of the money, both terms underflow: compare absolutely
        assert np.allclose(g.price_usd[big], price[big], rtol=1e-9, atol=0.0)
        assert np.allclose(g.price_usd[~big], 0.0, atol=1e-250)
        assert np.allclose(g.delta, w * n1, rtol=1e-12, atol=1e-300)
        pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
        assert np.allclose(g.gamma, pdf / (F * sst), rtol=1e-12, atol=1e-300)
        assert np.all(np.isfinite([g.price_usd, g.delta, g.gamma, g.vega, g.theta]))


def _delta_sum(F: Array, K: Array, t: Array, s: Array) -> float:
    return float(black76(F, K, t, s, True).delta.sum())


def test_a_forked_worker_can_price_large_inputs_after_its_parent_did() -> None:
    # A forked backtest worker inherits the parent's thread pool without its threads.
    F, K, t, s = random_options(black76_kernel.PARALLEL_MIN, seed=4)  # on the parent's threads
    parent = _delta_sum(F, K, t, s)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_delta_sum, (F, K, t, s)).get(timeout=10)
    assert child == parent


# --------------------------------------------------------------------------- expiry and bad input


def test_expired_options_are_worth_intrinsic_with_all_greeks_zero_and_no_nan() -> None:
    F = np.array([100.0, 100.0, 100.0, 100.0])
    K = np.array([90.0, 110.0, 90.0, 110.0])
    calls = np.array([True, True, False, False])
    for tau in (0.0, -1e-3):
        g = black76(F, K, tau, 0.5, calls)
        np.testing.assert_array_equal(g.price_usd, [10.0, 0.0, 0.0, 10.0])
        np.testing.assert_array_equal(g.price_coin, [0.1, 0.0, 0.0, 0.1])
        for name in ("delta", "net_delta", "gamma", "vega", "theta", "theta_rate", "rho"):
            np.testing.assert_array_equal(getattr(g, name), 0.0, err_msg=name)


def test_an_option_a_microsecond_from_expiry_has_finite_greeks() -> None:
    tiny = 1e-6 / (365 * 86_400)
    g = black76(100.0, np.array([99.0, 100.0, 101.0]), tiny, 0.8, True)
    for name in OptionGreeks.__dataclass_fields__:
        assert np.all(np.isfinite(getattr(g, name))), name
    np.testing.assert_allclose(g.delta, [1.0, 0.5, 0.0], atol=1e-9)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("forward", math.nan),
        ("forward", -1.0),
        ("strike", 0.0),
        ("strike", math.inf),
        ("sigma", 0.0),
        ("sigma", math.nan),
        ("tau", math.nan),
        ("tau", math.inf),
    ],
)
def test_bad_inputs_raise_data_error_naming_the_field_and_the_first_bad_index(
    field: str, bad: float
) -> None:
    args = {
        "forward": np.full(5, 100.0),
        "strike": np.full(5, 100.0),
        "tau": np.full(5, 0.1),
        "sigma": np.full(5, 0.5),
    }
    args[field][[2, 4]] = bad
    with pytest.raises(DataError, match=rf"{field}\[2\]"):
        black76(args["forward"], args["strike"], args["tau"], args["sigma"], True)


def test_option_type_given_as_text_is_rejected_rather_than_read_as_true() -> None:
    with pytest.raises(DataError, match="is_call"):
        black76(100.0, 100.0, 0.1, 0.5, np.array(["call", "put"]))
    ints = black76(100.0, 100.0, 0.1, 0.5, np.array([1, 0]))
    np.testing.assert_array_equal(ints.delta > 0, [True, False])


def test_a_bad_scalar_input_names_the_field() -> None:
    with pytest.raises(DataError, match="sigma must be a positive finite number"):
        black76(100.0, 100.0, 0.1, -0.5, True)


# --------------------------------------------------------------------------- time


def test_year_fraction_is_act_365_to_eight_utc() -> None:
    expiry = deribit_expiry(date(2026, 1, 30))
    assert expiry == datetime(2026, 1, 30, 8, 0, tzinfo=UTC)
    assert year_fraction(expiry - timedelta(days=1), expiry) == pytest.approx(1 / 365)
    assert year_fraction(expiry - timedelta(days=365), expiry) == pytest.approx(1.0)
    assert year_fraction(expiry + timedelta(hours=1), expiry) < 0


def test_settlement_factor_decays_linearly_over_the_last_thirty_minutes() -> None:
    expiry = deribit_expiry(date(2026, 1, 30))
    at = [expiry - timedelta(minutes=m) for m in (60, 30, 15, 6, 0)] + [expiry + timedelta(1)]
    assert [settlement_factor(t, expiry) for t in at] == pytest.approx([1, 1, 0.5, 0.2, 0, 0])
    minutes = np.array([45.0, 30.0, 15.0, 0.0])
    factor = settlement_factor_tau(minutes * 60 / (365 * 86_400))
    np.testing.assert_allclose(factor, [1.0, 1.0, 0.5, 0.0])


# --------------------------------------------------------------------------- portfolio

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
EXPIRY_7D = deribit_expiry(date(2026, 1, 12))
EXPIRY_30D = deribit_expiry(date(2026, 2, 4))
PERP = Instrument("BTC-PERPETUAL", "BTC", InstrumentKind.PERPETUAL, 10.0, 10.0, 10.0, 0.5)


def option(expiry: datetime, strike: float, kind: OptionType) -> Instrument:
    letter = "C" if kind is OptionType.CALL else "P"
    name = f"BTC-{expiry:%d%b%y}-{strike:.0f}-{letter}".upper()
    return Instrument(
        name, "BTC", InstrumentKind.OPTION, 1.0, 0.1, 0.1, 0.0005,
        expiry=expiry, strike=strike, option_type=kind,
    )  # fmt: skip


def future(expiry: datetime) -> Instrument:
    name = f"BTC-{expiry:%d%b%y}".upper()
    return Instrument(name, "BTC", InstrumentKind.FUTURE, 10.0, 10.0, 10.0, 2.5, expiry=expiry)


def b76_usd(forward: float, strike: float, tau: float, sigma: float, call: bool) -> float:
    """Black-76 price from the textbook, independently of bot.greeks."""

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    sst = sigma * math.sqrt(tau)
    d1 = (math.log(forward / strike) + 0.5 * sst * sst) / sst
    c = forward * cdf(d1) - strike * cdf(d1 - sst)
    return c if call else c - (forward - strike)


@dataclass(frozen=True)
class Market:
    """Prices as one multiple ``move`` of today's: index, forwards, future and perp marks."""

    index: float = 50_000.0
    basis: tuple[tuple[datetime, float], ...] = ((EXPIRY_7D, 1.001), (EXPIRY_30D, 1.004))
    perp_premium: float = 1.0002
    iv: float = 0.65

    def forward(self, expiry: datetime, move: float = 1.0) -> float:
        return self.index * move * dict(self.basis)[expiry]

    def perp(self, move: float = 1.0) -> float:
        return self.index * move * self.perp_premium


MARKET = Market()
CASH = 5.0  # coin
SHORT_GAMMA_BOOK: tuple[tuple[Instrument, float], ...] = (
    (option(EXPIRY_7D, 50_000, OptionType.CALL), -2.0),  # short straddle
    (option(EXPIRY_7D, 50_000, OptionType.PUT), -2.0),
    (option(EXPIRY_30D, 45_000, OptionType.PUT), -3.0),  # short strangle
    (option(EXPIRY_30D, 56_000, OptionType.CALL), -3.0),
    (future(EXPIRY_30D), 40_000.0),  # long dated future, USD
)


def option_inputs(inst: Instrument, move: float = 1.0) -> tuple[float, float, float, bool]:
    """(forward, strike, tau, is_call) of an option in MARKET moved by ``move``, at NOW."""
    assert inst.expiry is not None
    assert inst.strike is not None
    tau = (inst.expiry - NOW).total_seconds() / (365 * 86_400)
    return MARKET.forward(inst.expiry, move), inst.strike, tau, inst.option_type is OptionType.CALL


def option_coin_value(inst: Instrument, move: float) -> float:
    f, k, tau, call = option_inputs(inst, move)
    return b76_usd(f, k, tau, MARKET.iv, call) / f


def future_mark(inst: Instrument, move: float = 1.0) -> float:
    return MARKET.perp(move) if inst.expiry is None else MARKET.forward(inst.expiry, move)


def coin_value(legs: tuple[tuple[Instrument, float], ...], move: float) -> float:
    """The account in coin after every price moves by ``move``: cash, options at C/F, inverse
    futures' P&L size_usd·(1/F0 - 1/F) from entry at today's mark."""
    value = CASH
    for inst, size in legs:
        if inst.is_option:
            value += size * option_coin_value(inst, move)
        else:
            value += size * (1.0 / future_mark(inst) - 1.0 / future_mark(inst, move))
    return value


def usd_value(legs: tuple[tuple[Instrument, float], ...], move: float) -> float:
    return MARKET.index * move * coin_value(legs, move)


def make_book(
    legs: tuple[tuple[Instrument, float], ...], marks: dict[str, Mark] | None = None
) -> Book:
    if marks is None:
        marks = {}
        for inst, _ in legs:
            if inst.is_option:
                assert inst.expiry is not None
                f = MARKET.forward(inst.expiry)
                marks[inst.name] = Mark(
                    inst.name, option_coin_value(inst, 1.0), f, MARKET.index, NOW, MARKET.iv
                )
            else:
                mark = future_mark(inst)
                marks[inst.name] = Mark(inst.name, mark, mark, MARKET.index, NOW)
    perp = MARKET.perp()
    return Book(
        currency="BTC",
        as_of=NOW,
        positions=tuple(Position(inst, size) for inst, size in legs),
        marks=marks,
        account=Account("BTC", coin_value(legs, 1.0), CASH, CASH, timestamp=NOW),
        hedge_instrument=PERP,
        hedge_quote=Quote(PERP.name, perp - 0.5, perp + 0.5, perp, MARKET.index, NOW),
    )


def hedged(mode: TargetMode) -> tuple[tuple[Instrument, float], ...]:
    """The short-gamma book plus the perp that zeroes its delta in ``mode``."""
    before = portfolio_greeks(make_book(SHORT_GAMMA_BOOK), NOW).delta(mode)
    return (*SHORT_GAMMA_BOOK, (PERP, -before * MARKET.perp()))


def first_and_second_order(value: Callable[[float], float], h: float) -> tuple[float, float]:
    up, mid, down = value(1 + h), value(1.0), value(1 - h)
    return (up - down) / 2, (up + down) / 2 - mid


H = 0.001  # ±0.1%


def test_coin_hedged_book_has_flat_coin_value_to_first_order() -> None:
    legs = hedged(TargetMode.COIN)
    g = portfolio_greeks(make_book(legs), NOW)
    assert abs(g.delta_coin) < 1e-12
    first, second = first_and_second_order(lambda m: coin_value(legs, m), H)
    unhedged, _ = first_and_second_order(lambda m: coin_value(SHORT_GAMMA_BOOK, m), H)
    assert abs(unhedged) > 1e-4  # the unhedged book moves ~0.2 BTC per 1% here
    assert abs(first) < 1e-3 * abs(unhedged)
    # What remains is the gamma term: d²V_coin/dS² = gamma/S once delta_total is zero.
    dS = H * MARKET.index
    gamma_term = 0.5 * g.gamma * dS**2 / MARKET.index
    assert second < 0  # short gamma loses both ways
    assert gamma_term < 0
    assert second == pytest.approx(gamma_term, rel=0.02)
    assert abs(first) < 0.05 * abs(second)


def test_coin_hedge_on_bs_delta_instead_of_net_delta_would_not_be_flat() -> None:
    # The same construction on the unadjusted delta leaves a first-order coin P&L: the test
    # above can tell the conventions apart.
    g = portfolio_greeks(make_book(SHORT_GAMMA_BOOK), NOW)
    wrong = (*SHORT_GAMMA_BOOK, (PERP, -(g.options_delta_bs + g.futures_delta) * MARKET.perp()))
    first, _ = first_and_second_order(lambda m: coin_value(wrong, m), H)
    right, _ = first_and_second_order(lambda m: coin_value(hedged(TargetMode.COIN), m), H)
    assert abs(first) > 100 * abs(right)


def test_usd_hedged_book_has_flat_usd_value_to_first_order() -> None:
    legs = hedged(TargetMode.USD)
    g = portfolio_greeks(make_book(legs), NOW)
    assert abs(g.delta_usd_target) < 1e-12
    assert g.delta_coin == pytest.approx(-g.equity)  # USD-flat means short the equity in coin
    first, second = first_and_second_order(lambda m: usd_value(legs, m), H)
    coin_hedged = hedged(TargetMode.COIN)
    not_usd_flat, _ = first_and_second_order(lambda m: usd_value(coin_hedged, m), H)
    # A coin-flat book still carries its equity's USD delta: equity·dS.
    assert not_usd_flat == pytest.approx(g.equity * H * MARKET.index, rel=0.01)
    assert abs(first) < 1e-3 * abs(not_usd_flat)
    dS = H * MARKET.index
    gamma_term = 0.5 * g.gamma * dS**2  # USD: the classic gamma P&L
    assert second == pytest.approx(gamma_term, rel=0.02)
    assert abs(first) < 0.05 * abs(second)


def test_portfolio_fields_add_up_like_deribits_account_summary() -> None:
    legs = hedged(TargetMode.COIN)
    book = make_book(legs)
    g = portfolio_greeks(book, NOW)
    options = [(i, s) for i, s in legs if i.is_option]
    F, K, tau, call = zip(*(option_inputs(i) for i, _ in options), strict=True)
    per = black76(F, K, tau, MARKET.iv, call)
    sizes = np.array([s for _, s in options])
    assert g.options_delta_bs == pytest.approx(sizes @ per.delta)
    assert g.options_delta_net == pytest.approx(sizes @ per.net_delta)
    assert g.gamma == pytest.approx(sizes @ per.gamma)
    assert g.vega == pytest.approx(sizes @ per.vega)
    assert g.theta == pytest.approx(sizes @ per.theta)
    assert g.delta_coin == pytest.approx(g.options_delta_net + g.futures_delta)
    assert g.delta_usd_target == pytest.approx(g.equity + g.delta_coin)
    assert g.dollar_gamma == pytest.approx(g.gamma * MARKET.index**2 / 100)
    assert g.equity == book.account.equity
    assert g.index_price == MARKET.index
    assert g.delta(TargetMode.COIN) == g.delta_coin
    assert g.gamma < 0
    assert g.vega < 0
    assert g.theta > 0  # short options earn theta


def test_perpetual_delta_is_usd_size_over_mark_as_deribit_reports() -> None:
    mark = 48_160.55
    book = make_book(
        ((PERP, 200.0),),
        marks={PERP.name: Mark(PERP.name, mark, mark, mark, NOW)},
    )
    g = portfolio_greeks(book, NOW)
    assert g.futures_delta == pytest.approx(0.004152776, abs=5e-10)
    assert g.delta_coin == g.futures_delta


def test_linear_perpetual_delta_is_its_coin_size() -> None:
    linear = Instrument(
        "BTC_USDC-PERPETUAL", "BTC", InstrumentKind.PERPETUAL, 0.001, 0.001, 0.001, 1.0,
        inverse=False,
    )  # fmt: skip
    mark = 50_000.0
    book = make_book(
        ((linear, -0.25),), marks={linear.name: Mark(linear.name, mark, mark, mark, NOW)}
    )
    assert portfolio_greeks(book, NOW).futures_delta == -0.25


def test_hedge_perp_without_a_mark_uses_the_hedge_quote() -> None:
    book = make_book(((PERP, 1_000.0),), marks={})
    assert portfolio_greeks(book, NOW).futures_delta == pytest.approx(1_000.0 / MARKET.perp())


def test_option_in_its_settlement_window_keeps_only_the_unfixed_share_of_delta_and_gamma() -> None:
    call = option(EXPIRY_7D, 50_000, OptionType.CALL)
    book = make_book(((call, 1.0),))
    at = EXPIRY_7D - timedelta(minutes=10)
    g = portfolio_greeks(book, at)
    one = black76(
        MARKET.forward(EXPIRY_7D), 50_000.0, year_fraction(at, EXPIRY_7D), MARKET.iv, True
    )
    assert g.options_delta_bs == pytest.approx(float(one.delta) / 3)
    assert g.options_delta_net == pytest.approx(float(one.net_delta) / 3)
    assert g.gamma == pytest.approx(float(one.gamma) / 3)
    assert g.vega == pytest.approx(float(one.vega))  # only delta and gamma decay
    before = portfolio_greeks(book, EXPIRY_7D - timedelta(minutes=31))
    early = black76(MARKET.forward(EXPIRY_7D), 50_000.0, 31 / (365 * 1440), MARKET.iv, True)
    assert before.options_delta_bs == pytest.approx(float(early.delta))


def test_expired_positions_are_skipped_and_listed() -> None:
    call = option(EXPIRY_7D, 50_000, OptionType.CALL)
    fut = future(EXPIRY_7D)
    live = option(EXPIRY_30D, 56_000, OptionType.CALL)
    book = make_book(((call, -1.0), (fut, 1_000.0), (live, 1.0)))
    g = portfolio_greeks(book, EXPIRY_7D)
    assert g.expired_skipped == (call.name, fut.name)
    assert g.futures_delta == 0.0
    assert g.options_delta_bs > 0  # only the long live call is left


def test_option_without_a_mark_raises_data_error_naming_it() -> None:
    call = option(EXPIRY_7D, 50_000, OptionType.CALL)
    with pytest.raises(DataError, match=call.name):
        portfolio_greeks(make_book(((call, 1.0),), marks={}), NOW)


@pytest.mark.parametrize(
    ("underlying", "iv"), [(math.nan, 0.6), (-1.0, 0.6), (50_000.0, None), (50_000.0, 0.0)]
)
def test_option_with_a_bad_mark_raises_data_error_naming_it(
    underlying: float, iv: float | None
) -> None:
    call = option(EXPIRY_7D, 50_000, OptionType.CALL)
    bad = Mark(call.name, 0.01, underlying, 50_000.0, NOW, iv)
    with pytest.raises(DataError, match=call.name):
        portfolio_greeks(make_book(((call, 1.0),), marks={call.name: bad}), NOW)


def test_future_without_a_mark_raises_data_error_naming_it() -> None:
    fut = future(EXPIRY_30D)
    with pytest.raises(DataError, match=fut.name):
        portfolio_greeks(make_book(((fut, 1_000.0),), marks={}), NOW)


def test_empty_book_has_zero_greeks_and_usd_target_equal_to_equity() -> None:
    g: PortfolioGreeks = portfolio_greeks(make_book(()), NOW)
    assert (g.delta_coin, g.gamma, g.vega, g.theta) == (0.0, 0.0, 0.0, 0.0)
    assert g.delta_usd_target == g.equity == CASH


def test_the_books_implied_vol_is_the_vega_weighted_mean_of_its_options_ivs() -> None:
    from bot.domain import OptionType
    from tests.support.books import NOW, book, option

    near = option(90_000, OptionType.CALL, days=7)
    far = option(90_000, OptionType.PUT, days=60)
    g = portfolio_greeks(book(options=((near, -1.0, 0.5), (far, -1.0, 0.7))), NOW)
    assert g.iv is not None
    assert 0.6 < g.iv < 0.7  # the 60-day option carries more vega, so more weight
    assert portfolio_greeks(book(), NOW).iv is None
