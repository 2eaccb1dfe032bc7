"""Where the shared real market data lives: ``../shared/data`` beside the checkout.

``HEDGEBOT_SHARED_DATA`` overrides it. The data is read in place, never copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_data() -> Path:
    """The ``shared/data`` folder: $HEDGEBOT_SHARED_DATA, else beside the repository."""
    env = os.environ.get("HEDGEBOT_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


PRICES = shared_data() / "prices"
DERIBIT = shared_data() / "deribit"
