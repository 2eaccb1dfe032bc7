"""The simulated market: a seeded index with jumps, a perpetual, listed options and matching.

``SimMarket`` is hedgebot's embedded default market and the engine behind the simulated Deribit
server; ``bot.sim.matching`` and ``bot.sim.accounting`` are the rules both paper trading and
that server fill, charge and settle by.
"""

from bot.sim.market import MarketSource, SimMarket

__all__ = ["MarketSource", "SimMarket"]
