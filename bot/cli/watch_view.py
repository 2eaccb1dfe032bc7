"""How ``hedgebot watch`` draws a frame (rich), kept apart so only that command loads rich."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.cli.watch_data import CurrencyView, Frame

BAR = 15
STATE_STYLE = {"active": "bold green", "reducing": "bold yellow", "halted": "bold red"}


def render(frame: Frame) -> RenderableType:
    header = Text.assemble(
        ("hedgebot watch  ", "bold"),
        (f"{frame.now:%Y-%m-%d %H:%M:%S} UTC  ", ""),
        ("trading ", ""),
        (frame.state, STATE_STYLE.get(frame.state, "")),
        (f" ({frame.state_reason})  " if frame.state != "active" else "  ", "dim"),
        ("\ndaemon ", ""),
        (frame.daemon, "green" if frame.daemon == "ready" else "yellow"),
        (f"\nledger {frame.ledger}", "dim"),
    )
    return Group(header, *(_book(b) for b in frame.books))


def _book(v: CurrencyView) -> Panel:
    c = v.currency
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    if v.delta is not None and v.band is not None and v.target is not None:
        grid.add_row("delta", _band_bar(v.delta, v.target, v.band, c))
    grid.add_row(
        "book",
        f"delta_total {_f(v.delta_coin, '+.4f')} {c}   gamma {_f(v.gamma, '+.3e')}/$   "
        f"dollar gamma {_f(v.dollar_gamma, '+,.0f')}   index {_f(v.index, ',.2f')}",
    )
    grid.add_row("hedge", f"{_f(v.hedge, '+,.0f')} USD perpetual")
    # a read a few ms "in the future" is the daemon's clock and ours reading the wall apart
    age = "never read" if v.data_age is None else f"{max(0.0, v.data_age):,.0f} s"
    grid.add_row("data age", age)
    k = v.costs
    grid.add_row(
        "today",
        f"{k.fills} fills, ${k.traded_usd:,.0f} traded, fees ${k.fees_usd:,.2f}, "
        f"slippage ${k.slippage_usd:,.2f}",
    )
    decisions = Table("time", "status", "delta", "trade", "reason", box=None, pad_edge=False)
    for r in v.decisions:
        decisions.add_row(
            f"{r.ts:%H:%M:%S}",
            str(r.status),
            _f(r.delta_before, "+.4f"),
            _f(r.trade_amount, "+,.0f") if r.trade_amount else "",
            r.reason[:60],
        )
    orders: RenderableType = Text("no working orders", style="dim")
    if v.orders:
        t = Table("label", "side", "amount", "filled", "price", "status", box=None, pad_edge=False)
        for o in v.orders:
            t.add_row(
                o.label,
                o.side.value,
                f"{o.amount:,.0f}",
                f"{o.filled_amount:,.0f}",
                _f(o.price, ",.2f"),
                o.status.value,
            )
        orders = t
    title = Text(c)
    if v.state != "active":
        title.append(f"  {v.state} ({v.state_reason})", STATE_STYLE.get(v.state, ""))
    return Panel(
        Group(grid, Text("last decisions", style="bold"), decisions, orders),
        title=title,
        title_align="left",
    )


def _band_bar(delta: float, target: float, band: tuple[float, float], c: str) -> Text:
    """``[-0.05 ─────●──── +0.05]``: where the hedged delta sits in its band."""
    low, high = band
    width = high - low
    inside = low <= delta <= high
    pos = 0.5 if width <= 0 else (delta - low) / width
    slot = min(BAR - 1, max(0, round(pos * (BAR - 1))))
    bar = ["─"] * BAR
    bar[slot] = "●"
    return Text.assemble(
        f"{delta:+.4f} {c}  [{low:+.4f} ",
        ("".join(bar), "green" if inside else "bold red"),
        f" {high:+.4f}]  target {target:+.4f}",
        ("" if inside else "  OUTSIDE THE BAND", "bold red"),
    )


def _f(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)
