"""The venue's own wall-clock record of when it published a price and received an order.

Not part of Deribit's API: what a latency measurement needs from the venue's side. The moment
a ticker with a moved index price goes out (to any subscriber) and the moment a ``buy`` or
``sell`` request comes in are read from one monotonic timer, so their difference is the round
from a price move the venue published to the hedge order it caused, whatever the client's
clock says.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

STAMPS_PATH = "/sim/v1/stamps"


@dataclass
class Stamps:
    """``published[instrument]``: the last push of a ticker whose index price moved;
    ``orders``: each order request's arrival and label (the newest ``keep``)."""

    timer: Callable[[], float] = time.perf_counter
    keep: int = 100_000
    published: dict[str, float] = field(default_factory=dict)
    orders: deque[tuple[float, str | None]] = field(default_factory=deque)
    received: int = 0  # orders received in all, kept or not
    _index: dict[str, object] = field(default_factory=dict)

    def ticker_published(self, instrument: str, index_price: object) -> None:
        """A ticker went out; it counts as a move only when its index price changed."""
        if self._index.get(instrument) != index_price:
            self._index[instrument] = index_price
            self.published[instrument] = self.timer()

    def order_received(self, label: str | None) -> None:
        self.orders.append((self.timer(), label))
        self.received += 1
        while len(self.orders) > self.keep:
            self.orders.popleft()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """``GET /sim/v1/stamps?since=N`` (sim-only): the last publish of each ticker and the
        orders received after the first ``N``, as ``[seconds, label]`` on the venue's timer."""
        router.add_route("GET", STAMPS_PATH, self._answer)

    async def _answer(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return web.json_response({"error": "since must be an integer"}, status=400)
        first = self.received - len(self.orders)
        kept = list(self.orders)[max(0, since - first) :]
        body = {"published": self.published, "received": self.received, "orders": kept}
        return web.json_response(body)
