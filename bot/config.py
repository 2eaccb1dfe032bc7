"""Settings: typed, frozen, validated; a YAML file plus ``HEDGEBOT__SECTION__KEY`` overrides.

Precedence, highest first: environment, YAML file, the defaults declared here. Every default is
documented where it is declared and repeated in ``config.example.yaml``. API keys come only from
the environment (``HEDGEBOT__VENUE__API_KEY``, ``HEDGEBOT__VENUE__API_SECRET``): a YAML file that
carries them is refused, and they are ``SecretStr`` so they never print.

:func:`load_settings` refuses a named file that does not exist and any ``HEDGEBOT__`` variable
that names no setting (suggesting the closest), and renders each error itself (never pydantic's
text, which repeats the input, secrets included) with where the value came from
(:mod:`bot.config_sources`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from bot.config_sources import SECRET_KEYS, check_environment, error_lines
from bot.domain import Instrument, InstrumentKind, TargetMode

# The simulated venue's own credentials. They open nothing but `hedgebot sim`, which listens on
# loopback only; HEDGEBOT_SIM_API_KEY/SECRET (server) and HEDGEBOT__VENUE__API_KEY/SECRET
# (client) replace them.
SIM_API_KEY = "hedgebot-sim"
SIM_API_SECRET = "hedgebot-sim-local-only"


class ConfigError(Exception):
    """A settings file or environment that cannot be used; ``lines`` name each bad field."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Section(BaseModel):
    # NaN and infinities are refused everywhere: a NaN bound compares false and passes all.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CurrencyFacts(_Section):
    """Venue facts of one currency (Deribit's contract specifications): data, so a venue change
    is a setting."""

    perpetual: str = Field(description="hedge perpetual's name, e.g. BTC-PERPETUAL")
    perp_contract_usd: float = Field(gt=0, description="USD per perpetual contract")
    perp_min_amount: float = Field(gt=0, description="smallest perpetual order, USD")
    perp_amount_step: float = Field(gt=0, description="perpetual order step, USD")
    perp_tick_size: float = Field(gt=0, description="perpetual price tick, USD")
    option_min_amount: float = Field(gt=0, description="smallest option order, coin")
    option_tick_size: float = Field(gt=0, default=0.0005, description="option price tick, coin")

    def perpetual_instrument(self, currency: str) -> Instrument:
        """The hedge perpetual of ``currency`` as an :class:`Instrument` (inverse, USD sized)."""
        return Instrument(
            name=self.perpetual,
            currency=currency,
            kind=InstrumentKind.PERPETUAL,
            contract_size=self.perp_contract_usd,
            min_amount=self.perp_min_amount,
            amount_step=self.perp_amount_step,
            tick_size=self.perp_tick_size,
        )


def hedge_instruments(facts: Mapping[str, CurrencyFacts]) -> dict[str, Instrument]:
    """Every currency's hedge perpetual by instrument name: what a ledger's fills were in."""
    return {f.perpetual: f.perpetual_instrument(currency) for currency, f in facts.items()}


DEFAULT_FACTS: dict[str, CurrencyFacts] = {
    "BTC": CurrencyFacts(
        perpetual="BTC-PERPETUAL",
        perp_contract_usd=10,
        perp_min_amount=10,
        perp_amount_step=10,
        perp_tick_size=0.5,
        option_min_amount=0.1,
        option_tick_size=0.0005,
    ),
    "ETH": CurrencyFacts(
        perpetual="ETH-PERPETUAL",
        perp_contract_usd=1,
        perp_min_amount=1,
        perp_amount_step=1,
        perp_tick_size=0.05,
        option_min_amount=1,
        option_tick_size=0.0005,
    ),
}


class FeeSettings(_Section):
    """Deribit's default fees, as fractions (Deribit's fee schedule)."""

    perp_maker: float = Field(0.0, ge=-0.01, le=0.01, description="perpetual maker fee")
    perp_taker: float = Field(0.0005, ge=0, le=0.01, description="perpetual taker fee")
    option_rate: float = Field(0.0003, ge=0, le=0.01, description="option fee, of underlying")
    option_cap: float = Field(0.125, ge=0, le=1, description="option fee cap, of option price")


class RateLimitSettings(_Section):
    """Deribit's request credits (Deribit API docs, "Rate Limits"); beyond them it answers
    10028."""

    matching_per_second: float = Field(
        5.0, gt=0, le=1000, description="buy/sell/edit/cancel calls per second"
    )
    matching_burst: int = Field(20, ge=1, le=10_000, description="matching-engine burst")
    other_per_second: float = Field(20.0, gt=0, le=1000, description="other calls per second")
    other_burst: int = Field(100, ge=1, le=10_000, description="other calls burst")


class VenueClockSettings(_Section):
    """The offset between this host's clock and the venue's (``public/get_time``)."""

    refresh_seconds: float = Field(
        300.0, gt=0, le=86_400, description="re-measure the offset this often (host seconds)"
    )
    max_offset_seconds: float = Field(
        5.0, gt=0, le=3600, description="a larger offset stops trading: fix the host clock (NTP)"
    )


class VenueSettings(_Section):
    kind: Literal["sim", "deribit"] = Field(
        "sim",
        description="sim: the simulated Deribit of `hedgebot sim` at sim_url; deribit: Deribit "
        "(see network); both through ccxt. --paper fills locally: on the simulated market "
        "(sim), or on the venue's public market data read with no key (deribit)",
    )
    currencies: tuple[str, ...] = Field(("BTC",), min_length=1, description="books to hedge")
    network: Literal["testnet", "mainnet", "custom"] = Field(
        "testnet", description="deribit: which one; mainnet must be chosen explicitly"
    )
    url: str | None = Field(None, description="deribit with network=custom: REST base URL")
    sim_url: str = Field("http://127.0.0.1:8642", description="sim: where `hedgebot sim` listens")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="per request")
    label_prefix: str = Field("hb", min_length=1, max_length=16, description="our order labels")
    facts: dict[str, CurrencyFacts] = Field(
        default_factory=lambda: dict(DEFAULT_FACTS), description="contract specs per currency"
    )
    fees: FeeSettings = Field(FeeSettings(), description="Deribit fee schedule")
    rate_limits: RateLimitSettings = Field(
        RateLimitSettings(), description="ccxt: request rate buckets, paced on the clock"
    )
    marks_ticker_max: int = Field(
        8,
        ge=0,
        le=50,
        description="ccxt: a cycle holding up to this many instruments reads their marks by "
        "one public/ticker each, concurrently; a larger book reads the currency's book "
        "summaries and parses only the held rows (0: always the summaries)",
    )
    allow_withdraw_scope: bool = Field(
        False,
        description="`hedgebot check` fails a key that may withdraw (wallet:read_write) "
        "unless this is true; a hedger never needs to withdraw",
    )
    clock: VenueClockSettings = Field(
        VenueClockSettings(), description="ccxt: measuring the venue's clock against ours"
    )
    api_key: SecretStr | None = Field(None, description="from HEDGEBOT__VENUE__API_KEY only")
    api_secret: SecretStr | None = Field(None, description="from HEDGEBOT__VENUE__API_SECRET only")

    @model_validator(mode="after")
    def _currencies_known(self) -> VenueSettings:
        unknown = [c for c in self.currencies if c not in self.facts]
        if unknown:
            raise ValueError(f"no venue facts for currencies {unknown}; add them under venue.facts")
        return self


class BookLeg(_Section):
    """One option leg of the simulated venue's starting book."""

    option_type: Literal["call", "put"]
    expiry_days: float = Field(gt=0, le=400, description="days from start to expiry")
    moneyness: float = Field(1.0, gt=0.2, lt=5, description="strike / spot at start")
    size: float = Field(description="signed, in coin; negative is short")


class MarketSettings(_Section):
    """The simulated market: seeded GBM with jumps, a perpetual around it, a smile."""

    seed: int = Field(7, description="seed of every random draw of the market (and of ids)")
    clock: Literal["wall", "lockstep"] = Field(
        "wall",
        description="wall: time is the wall's (times `speed`); lockstep: the simulated venue "
        "owns time and it moves only when the daemon sleeps, so a seed replays the same day "
        "on any machine (sim venue and --paper only)",
    )
    start: datetime | None = Field(
        None,
        description="lockstep: the instant the simulated market starts (default: midnight UTC "
        "of the day it first starts); a venue with saved state resumes at its own time",
    )
    pace: float | None = Field(
        None,
        gt=0,
        le=1e9,
        description="lockstep: at most this many simulated seconds per wall second, for a "
        "watcher; results do not depend on it (default: as fast as it computes)",
    )
    speed: float = Field(
        1.0, gt=0, le=100_000, description="wall clock: simulated seconds per wall second"
    )
    clock_anchor: datetime | None = Field(
        None,
        description="wall clock: wall time the accelerated clock counts from; processes "
        "sharing it agree (default: when the process starts)",
    )
    step_seconds: float = Field(60.0, gt=0, le=3600, description="market path resolution")
    spot: dict[str, float] = Field(
        default_factory=lambda: {"BTC": 90_000.0, "ETH": 3_000.0}, description="start index"
    )
    volatility: float = Field(0.55, gt=0, lt=5, description="diffusion vol of the index, annual")
    drift: float = Field(0.0, ge=-5, le=5, description="annual drift of the index")
    jump_intensity: float = Field(12.0, ge=0, le=1000, description="jumps per year")
    jump_mean: float = Field(-0.01, ge=-0.5, le=0.5, description="mean log jump")
    jump_std: float = Field(0.03, ge=0, le=1, description="std of log jump")
    smile_skew: float = Field(-0.08, ge=-2, le=2, description="IV slope per unit log-moneyness")
    smile_curvature: float = Field(0.25, ge=0, le=5, description="IV convexity in log-moneyness")
    perp_basis_bps: float = Field(2.0, ge=-500, le=500, description="perp premium to index")
    spread_bps: float = Field(1.0, gt=0, le=500, description="perp bid/ask half-spread")
    depth_usd: float = Field(250_000.0, gt=0, description="perp size at each of 10 levels")
    equity: dict[str, float] = Field(
        default_factory=lambda: {"BTC": 10.0, "ETH": 150.0}, description="starting equity, coin"
    )
    book: tuple[BookLeg, ...] = Field(
        default=(
            BookLeg(option_type="call", expiry_days=7, moneyness=1.0, size=-5),
            BookLeg(option_type="put", expiry_days=7, moneyness=1.0, size=-5),
            BookLeg(option_type="call", expiry_days=14, moneyness=1.1, size=-3),
            BookLeg(option_type="put", expiry_days=14, moneyness=0.9, size=-3),
        ),
        description="short straddle and strangle per currency, sized in BTC-equivalents",
    )


class HedgeSettings(_Section):
    target_mode: TargetMode = Field(
        TargetMode.COIN, description="coin: flatten coin P&L (delta_total); usd: equity+delta"
    )
    target_delta: float = Field(0.0, ge=-1e6, le=1e6, description="coin delta to hold")


class TimeBandSettings(_Section):
    interval_seconds: float = Field(3600.0, ge=1, le=7 * 86400, description="rebalance period")


class DeltaBandSettings(_Section):
    band: float = Field(0.1, gt=0, description="coin delta tolerated either side of target")
    rebalance_to: Literal["target", "edge"] = Field("target", description="where a trade goes")


class GammaScaledSettings(_Section):
    risk_aversion: float = Field(1.0, gt=0, description="Whalley-Wilmott gamma_ra")
    cost: float = Field(0.0005, ge=0, lt=0.1, description="proportional cost lambda (fraction)")
    min_band: float = Field(0.01, ge=0, description="coin; floor of the band")
    method: Literal["whalley_wilmott", "zakamouline"] = Field(
        "whalley_wilmott", description="zakamouline also reads policy.volatility's sigma"
    )


class VolatilitySettings(_Section):
    """Where the policies' sigma comes from: the book's implied vol or a forecast from the
    index prices the daemon has seen (its greeks snapshots)."""

    source: Literal["implied", "ewma", "garch"] = Field("implied", description="sigma source")
    lookback_hours: float = Field(72.0, gt=0, le=24 * 365, description="index history used")
    min_points: int = Field(30, ge=10, description="fewer recorded prices: use implied")
    ewma_lambda: float = Field(0.94, gt=0, lt=1, description="EWMA decay per observation")
    scale_time_band: bool = Field(
        False, description="time-band interval x (reference/sigma)^2, within x0.25..x4"
    )
    reference: float = Field(0.6, gt=0, lt=5, description="sigma at which the interval is as set")


class PolicySettings(_Section):
    kind: Literal["time_band", "delta_band", "gamma_scaled"] = Field(
        "delta_band", description="which policy of strategies/ decides"
    )
    check_seconds: float = Field(
        60.0, ge=0.05, le=86400, description="how often band policies look at the book"
    )
    time_band: TimeBandSettings = TimeBandSettings()
    delta_band: DeltaBandSettings = DeltaBandSettings()
    gamma_scaled: GammaScaledSettings = GammaScaledSettings()
    volatility: VolatilitySettings = VolatilitySettings()


UNLIMITED = "unlimited"


def _cap(ceiling: float, unit: str) -> PlainValidator:
    """A positive number at most ``ceiling``, or ``unlimited``: a huge number or ``inf`` would
    switch the protection off by accident, so switching it off must be said in words."""

    def check(value: Any) -> float | str:
        if value == UNLIMITED:
            return UNLIMITED
        number = _finite_number(value)
        if number is None:
            raise ValueError(
                f"{value!r} is not a finite number; to switch this limit off write `{UNLIMITED}`"
            )
        if number <= 0:
            raise ValueError(f"{number:g} must be above 0")
        if number > ceiling:
            raise ValueError(
                f"{number:g} is above the ceiling of {ceiling:,.0f} {unit}; to switch this "
                f"limit off write `{UNLIMITED}`"
            )
        return number

    return PlainValidator(check)


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# A cap is a positive number below its ceiling, or the word "unlimited": never inf or 1e30.
OrderCap = Annotated[float | Literal["unlimited"], _cap(1e8, "USD")]
PositionCap = Annotated[float | Literal["unlimited"], _cap(1e9, "USD")]
DailyCap = Annotated[float | Literal["unlimited"], _cap(1e10, "USD")]
CoinTolerance = Annotated[float, Field(gt=0, le=100)]


def cap_value(cap: float | str) -> float:
    """A cap as a number: ``unlimited`` is infinity, for comparisons only."""
    return math.inf if cap == UNLIMITED else float(cap)


class RiskSettings(_Section):
    """Limits between a decision and the venue, and the plausibility of each read.

    Caps accept ``unlimited`` to switch them off; any number above a cap's ceiling is refused,
    so ``inf`` or ``1e30`` can never disable a protection by accident.
    """

    max_order_usd: OrderCap = Field(
        2_000_000.0, description="largest single hedge order, USD (ceiling 1e8, or unlimited)"
    )
    oversize: Literal["clip", "deny"] = Field(
        "clip", description="an order above max_order_usd: clip it (rest next cycle) or deny it"
    )
    max_position_usd: PositionCap = Field(
        20_000_000.0, description="largest hedge position, USD (ceiling 1e9, or unlimited)"
    )
    max_daily_notional_usd: DailyCap = Field(
        50_000_000.0,
        description="USD ordered per currency in any 24 hours, from the ledger (ceiling 1e10)",
    )
    max_orders_per_minute: int = Field(
        30, ge=1, le=10_000, description="orders sent per minute, counted from the ledger"
    )
    max_data_age_seconds: float = Field(
        30.0, gt=0, le=3600, description="older inputs skip the cycle (at most 3600)"
    )
    max_clock_ahead_seconds: float = Field(
        5.0, ge=0, le=60, description="data stamped further ahead of our clock is refused"
    )
    max_index_deviation: float = Field(
        0.05, gt=0, le=0.5, description="refuse a hedge bid/ask/mark this far from the index"
    )
    delta_tolerance_coin: dict[str, CoinTolerance] = Field(
        default_factory=lambda: {"BTC": 0.02, "ETH": 0.5},
        description="local vs venue delta_total that skips, coin (at most 100)",
    )
    delta_tolerance_fraction: float = Field(
        0.02, ge=0, le=0.5, description="plus this fraction of the book's gross option delta"
    )
    position_tolerance: float = Field(
        0.0,
        ge=0,
        le=1_000_000,
        description="hedge amount unit; read vs ledger (last read + our fills) that skips",
    )
    equity_move_floor: float = Field(
        0.02,
        ge=0,
        le=1,
        description="usd mode: equity may move this fraction beyond what the greeks explain",
    )
    halt_after_bad_reads: int = Field(
        5, ge=1, le=1000, description="implausible reads in a row that halt trading"
    )
    max_fill_beyond_limit: float = Field(
        0.001,
        ge=0,
        le=0.1,
        description="a fill priced this fraction beyond its order's limit is recorded, then halts",
    )
    max_fill_from_mid: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="an order without a limit: a fill this fraction from the decision mid halts",
    )
    max_fee_rate: float = Field(
        0.005,
        gt=0,
        le=0.1,
        description="a fill charged above this fraction of its notional is recorded, then halts",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "delta_disagreement_usd" in data:
            raise ValueError(
                "delta_disagreement_usd was replaced by delta_tolerance_coin (per currency, in "
                "coin, e.g. {BTC: 0.02, ETH: 0.5}) plus delta_tolerance_fraction of the book's "
                "gross option delta"
            )
        return data

    @property
    def order_cap_usd(self) -> float:
        return cap_value(self.max_order_usd)

    @property
    def position_cap_usd(self) -> float:
        return cap_value(self.max_position_usd)

    @property
    def daily_notional_cap_usd(self) -> float:
        return cap_value(self.max_daily_notional_usd)


class ExecutionSettings(_Section):
    """Post-only at the touch, re-priced, then IOC within a cap, then (if allowed) market."""

    slippage_cap_bps: float = Field(10.0, ge=0, le=1000, description="IOC limit beyond touch")
    order_timeout_seconds: float = Field(10.0, gt=0, description="wait for an order's outcome")
    post_only: bool = Field(True, description="start passive: post-only at the touch")
    reprice_seconds: float = Field(5.0, gt=0, le=3600, description="re-price a resting order")
    max_reprices: int = Field(2, ge=0, le=50, description="post-only attempts after the first")
    urgent_band_multiple: float = Field(
        2.0, ge=1, description="|delta - target| beyond this many bands skips post-only"
    )
    allow_market: bool = Field(False, description="after IOC, send the rest as a market order")
    fill_lookback_seconds: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="fills are read from this long before an order's creation (venue clock lag)",
    )
    unknown_grace_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="an order the venue never acknowledged and cannot find by label or id "
        "after this long is concluded never to have arrived (an acknowledged one never is)",
    )
    lookup_backoff_seconds: float = Field(
        0.25, gt=0, le=60, description="first wait between look-ups of an unknown order"
    )
    lookup_backoff_max_seconds: float = Field(
        2.0, gt=0, le=600, description="longest wait between look-ups (the wait doubles)"
    )


class DatabaseSettings(_Section):
    url: str = Field("sqlite:///hedgebot.db", description="live ledger; any SQLAlchemy URL")
    paper_url: str = Field("sqlite:///hedgebot-paper.db", description="paper-mode ledger")


class EventSettings(_Section):
    """Event-driven cycles besides the schedule, from the venue's WebSocket ticker.

    Off by default: an event cycle starts on wall-time stream arrival (so it is refused with
    ``market.clock: lockstep``), it sends more orders than the schedule alone, and the schedule
    is the proven path; switch it on for a live book that should react within milliseconds.
    """

    enabled: bool = Field(
        False,
        description="besides the schedule, run a cycle when |gamma| x the index move since the "
        "last cycle could have pushed delta past the band (delta_band, gamma_scaled; a "
        "time_band policy keeps its schedule only)",
    )
    band_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="fire when the estimated delta change reaches this fraction of the room "
        "between the last cycle's delta and the nearer band edge",
    )
    min_gap_seconds: float = Field(
        1.0,
        ge=0.01,
        le=3600,
        description="debounce: at least this long between event cycles of one currency; a move "
        "inside the gap is looked at again when it ends",
    )
    max_per_minute: int = Field(
        20, ge=1, le=600, description="event cycles per currency per minute; beyond: schedule"
    )
    silence_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="no ticker this long: the stream is reconnected (the schedule runs "
        "meanwhile; reconnecting ends the old session and its cancel-on-disconnect)",
    )
    reconnect_min_seconds: float = Field(
        0.5, gt=0, le=60, description="first wait before reconnecting a dropped stream"
    )
    reconnect_max_seconds: float = Field(
        30.0, gt=0, le=600, description="longest wait between reconnects (doubling backoff)"
    )

    @model_validator(mode="after")
    def _backoff_is_ordered(self) -> EventSettings:
        if self.reconnect_min_seconds > self.reconnect_max_seconds:
            raise ValueError("reconnect_min_seconds must not exceed reconnect_max_seconds")
        return self


class DaemonSettings(_Section):
    heartbeat_seconds: float = Field(
        30.0, gt=0, description="seconds between heartbeats, on the clock (simulated if sped up)"
    )
    stop_grace_seconds: float = Field(8.0, gt=0, le=60, description="abandon a cycle after this")
    lease_seconds: float = Field(
        60.0,
        ge=5,
        le=3600,
        description="the book lease in the ledger expires this long (wall time) after its last "
        "renewal; the daemon renews it every cycle and every third of it; a dead holder's "
        "lease is taken over only once expired",
    )
    cancel_on_stop: bool = Field(
        True, description="SIGTERM and any halt cancel our resting orders, recorded in the ledger"
    )
    cancel_on_disconnect: Literal["auto", "on", "off"] = Field(
        "auto",
        description="the daemon's WebSocket session enables Deribit's "
        "private/enable_cancel_on_disconnect (scope connection). Deribit cancels only orders "
        "created over that connection (https://docs.deribit.com/api-reference/session-management"
        "/private-enable_cancel_on_disconnect), and hedgebot sends its orders over REST, so on a "
        "real Deribit this does not yet cancel our orders when the daemon dies (nor on the "
        "simulated venue, which does as Deribit does); the next cycle or start cancels them. "
        "auto: on for venue.kind deribit, off for the simulated venue",
    )
    events: EventSettings = Field(
        EventSettings(), description="event-driven cycles from the venue's streams"
    )


class LoggingSettings(_Section):
    format: Literal["auto", "console", "json"] = Field("auto", description="auto: tty->console")
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="minimum")


class AlertSettings(_Section):
    """When and how often to alert. Where to: the URLs in ``HEDGEBOT_ALERT_URLS`` (apprise's
    format, https://github.com/caronc/apprise/wiki), from the environment only: they carry
    tokens."""

    dedupe_seconds: float = Field(
        3600.0, ge=0, le=7 * 86400, description="the same alert again only after this long"
    )
    max_per_hour: int = Field(20, ge=1, le=10_000, description="alerts sent per hour, all kinds")
    unknown_order_grace_seconds: float = Field(
        300.0, gt=0, description="an order still of unknown outcome after this alerts"
    )
    stale_cycles: int = Field(
        3,
        ge=1,
        le=10_000,
        description="cycles in a row with stale data (or clock offset) that alert",
    )
    max_clock_offset_seconds: float = Field(
        2.0, gt=0, le=3600, description="venue clock offset beyond this counts toward stale_cycles"
    )
    delta_bands: float = Field(
        2.0,
        gt=0,
        le=1000,
        description="|delta - target| after a cycle beyond this many half-bands alerts",
    )
    delta_cycles: int = Field(
        2, ge=1, le=10_000, description="cycles in a row ending beyond delta_bands that alert"
    )
    error_cycles: int = Field(
        3, ge=1, le=10_000, description="cycles in a row that fail or skip before an alert"
    )
    daily_summary: bool = Field(
        False, description="send fees, slippage and biggest delta at 00:00 UTC"
    )
    queue_size: int = Field(
        100, ge=1, le=10_000, description="alerts waiting to be sent; more drop"
    )
    send_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="per send; a receiver that is down costs at most this"
    )


class MonitorSettings(_Section):
    """Prometheus metrics and health probes on one HTTP listener, and alerts."""

    metrics: bool = Field(False, description="serve /metrics, /healthz and /readyz while running")
    host: str = Field("127.0.0.1", description="listen address; loopback unless allow_non_loopback")
    port: int = Field(9464, ge=0, le=65535, description="listen port (0: any free port)")
    allow_non_loopback: bool = Field(
        False, description="permit a non-loopback host (a container publishing the port)"
    )
    stall_seconds: float = Field(
        300.0, gt=0, description="/healthz fails and the watchdog stops when a loop overruns this"
    )
    alerts: AlertSettings = AlertSettings()

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> MonitorSettings:
        loopback = self.host in ("localhost", "::1") or self.host.startswith("127.")
        if not loopback and not self.allow_non_loopback:
            raise ValueError(
                f"monitor.host {self.host!r} is not a loopback address; metrics show the book to "
                "whoever connects: set monitor.allow_non_loopback: true to mean it"
            )
        return self


class Settings(BaseSettings):
    """All of hedgebot's settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="HEDGEBOT__",
        env_nested_delimiter="__",
        case_sensitive=False,
        allow_inf_nan=False,
    )

    venue: VenueSettings = VenueSettings()
    market: MarketSettings = MarketSettings()
    hedge: HedgeSettings = HedgeSettings()
    policy: PolicySettings = PolicySettings()
    policy_by_currency: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per-currency changes to `policy`, e.g. {ETH: {delta_band: {band: 3}}}",
    )
    risk: RiskSettings = RiskSettings()
    execution: ExecutionSettings = ExecutionSettings()
    database: DatabaseSettings = DatabaseSettings()
    daemon: DaemonSettings = DaemonSettings()
    logging: LoggingSettings = LoggingSettings()
    monitor: MonitorSettings = MonitorSettings()

    def policy_for(self, currency: str) -> PolicySettings:
        """``policy`` with this currency's changes from ``policy_by_currency`` merged in."""
        changes = self.policy_by_currency.get(currency)
        if not changes:
            return self.policy
        return PolicySettings.model_validate(_merge(self.policy.model_dump(), changes))

    @model_validator(mode="after")
    def _policies_per_currency_are_valid(self) -> Settings:
        for currency in self.policy_by_currency:
            if currency not in self.venue.facts:
                raise ValueError(f"policy_by_currency names {currency!r}, which has no venue facts")
            try:
                self.policy_for(currency)
            except ValidationError as exc:
                where = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(f"policy_by_currency.{currency}: {where}") from None
        return self

    @model_validator(mode="after")
    def _delta_tolerance_for_every_currency(self) -> Settings:
        missing = [c for c in self.venue.currencies if c not in self.risk.delta_tolerance_coin]
        if missing:
            raise ValueError(
                f"risk.delta_tolerance_coin has no entry for {missing}: give each hedged "
                "currency its tolerance in coin"
            )
        return self

    @model_validator(mode="after")
    def _events_need_the_wall_clock(self) -> Settings:
        if self.daemon.events.enabled and self.market.clock == "lockstep":
            raise ValueError(
                "daemon.events.enabled needs market.clock: wall: in lockstep the venue's price "
                "moves only when the daemon advances time, so a stream could only break the "
                "replay of a seed"
            )
        return self

    @model_validator(mode="after")
    def _no_fast_clock_on_a_real_venue(self) -> Settings:
        real = self.venue.kind == "deribit" and self.venue.network != "custom"
        if real and self.market.speed != 1:
            raise ValueError(
                "market.speed must be 1 when trading a real Deribit: time runs faster only "
                "against the simulated venue (venue.network: custom)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFreeYamlSource(settings_cls))


class _SecretFreeYamlSource(YamlConfigSettingsSource):
    """The YAML file named by the class's ``yaml_file``; refuses files that carry secrets."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        venue = data.get("venue")
        if isinstance(venue, dict):
            found = [k for k in SECRET_KEYS if k in venue]
            if found:
                raise ConfigError(
                    [
                        f"venue.{k}: secrets come only from the environment (HEDGEBOT__VENUE__"
                        f"{k.upper()}), remove it from the file"
                        for k in found
                    ]
                )
        return data


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    path: str | Path | None = "config.yaml",
    *,
    required: bool = False,
    **overrides: Any,
) -> Settings:
    """Read settings from ``path`` and the ``HEDGEBOT__`` environment.

    A missing ``path`` is skipped unless ``required`` (a file the user named must exist). Raises
    :class:`ConfigError` with one line per bad field, each naming where the value came from (the
    environment variable, or the file and line) and never repeating a secret.
    """
    yaml_file = Path(path) if path is not None else None
    text: str | None = None
    if yaml_file is not None and yaml_file.exists() and not yaml_file.is_dir():
        try:
            text = yaml_file.read_text()
            parsed = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{yaml_file}: cannot read: {exc}"]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"{yaml_file}: not valid YAML: {exc}"]) from None
        if parsed is not None and not isinstance(parsed, dict):
            raise ConfigError([f"{yaml_file}: the top level must be a mapping of sections"])
    elif yaml_file is not None and required:
        what = "is a directory" if yaml_file.exists() else "does not exist"
        raise ConfigError([f"--config {yaml_file}: the file {what}; name a YAML settings file"])
    else:
        yaml_file = None
    env_problems = check_environment(Settings)
    if env_problems:
        raise ConfigError(env_problems)
    bound = type(
        "Settings",
        (Settings,),
        {"model_config": SettingsConfigDict(**{**Settings.model_config, "yaml_file": yaml_file})},
    )
    try:
        settings: Settings = bound(**overrides)
        return settings
    except ValidationError as exc:
        raise ConfigError(error_lines(exc, Settings, yaml_file, text)) from None
    except SettingsError as exc:  # an environment value pydantic-settings could not decode
        raise ConfigError([f"environment: {exc}"]) from None
