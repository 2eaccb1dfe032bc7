"""Running unattended: Prometheus metrics, health probes, alerts and systemd notifications.

Ranked below the pipeline: the daemon calls :class:`Monitor` with plain values and the monitor
reads the ledger; it never imports the cycle.
"""

from bot.monitor.alerts import ALERT_URLS_ENV, Alert
from bot.monitor.monitor import Monitor

__all__ = ["ALERT_URLS_ENV", "Alert", "Monitor"]
