"""The ledger in SQL (SQLAlchemy 2, Alembic): hedgebot's record of decisions, orders and fills,
and the paper venue's own account. SQLAlchemy is imported here and in ``migrations/`` only."""

from bot.domain import RebalanceStatus, TradingState
from bot.store.db import (
    SchemaOutOfDate,
    current_revision,
    ensure_current,
    head_revision,
    make_engine,
    open_ledger,
    upgrade,
)
from bot.store.ledger import DuplicateRecord, Ledger, LedgerError, TerminalOrder, UnknownOrder
from bot.store.paper import SqlPaperStore
from bot.store.records import (
    OPEN_STATUSES,
    GreeksSnapshot,
    LedgerSummary,
    OrderEventRow,
    OrderRow,
    RebalanceRecord,
    RebalanceRow,
    TradingStateRow,
)

__all__ = [
    "OPEN_STATUSES",
    "DuplicateRecord",
    "GreeksSnapshot",
    "Ledger",
    "LedgerError",
    "LedgerSummary",
    "OrderEventRow",
    "OrderRow",
    "RebalanceRecord",
    "RebalanceRow",
    "RebalanceStatus",
    "SchemaOutOfDate",
    "SqlPaperStore",
    "TerminalOrder",
    "TradingState",
    "TradingStateRow",
    "UnknownOrder",
    "current_revision",
    "ensure_current",
    "head_revision",
    "make_engine",
    "open_ledger",
    "upgrade",
]
