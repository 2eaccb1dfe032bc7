"""hedgebot: keeps a crypto options book delta-hedged and records what hedging costs."""

__version__ = "0.1.0"
