"""The units and Deribit conventions every room shares, defined once.

Time is ACT/365, as Deribit's option pricing uses it; options expire at 08:00 UTC and settle on
the average of the index over the last 30 minutes before expiry; the perpetual's funding rate is
quoted per 8 hours; an order label is at most 64 characters. Sources: Deribit's API v2
documentation (``private/buy``: "label — user defined label for the order (maximum 64
characters)") and its contract specifications (options, perpetual funding).
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Final

SECONDS_PER_HOUR: Final = 3600.0
SECONDS_PER_DAY: Final = 86_400.0
DAYS_PER_YEAR: Final = 365.0
SECONDS_PER_YEAR: Final = DAYS_PER_YEAR * SECONDS_PER_DAY

EXPIRY_TIME_UTC: Final = time(8, 0)
SETTLEMENT_WINDOW: Final = timedelta(minutes=30)
FUNDING_PERIOD_SECONDS: Final = 8 * SECONDS_PER_HOUR
MAX_LABEL_LENGTH: Final = 64
