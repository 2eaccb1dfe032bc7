"""hedgebot keeps a Deribit options book delta-hedged.

Exit codes: 0 done; 1 failed; 2 a mistake in the settings, arguments or venue settings (one line
says which and what would be valid); 3 database schema behind the code; 4 another process holds
the book; 5 start-up reconciliation failed; 6 the confirmation prompt was answered no or closed
(Ctrl-D): nothing sent; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from bot.cli import analysis, backtest, check, control, db, paper, run, sim, status, watch
from bot.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_RECONCILE,
    EXIT_SCHEMA,
    EXIT_USAGE,
    Handler,
    Parser,
    UsageError,
    known_secrets,
    say,
    scrub,
)
from bot.cli.ledger import fix

DEFAULT_CONFIG = "config.yaml"

# Every command group registers its subcommands the same way: ``module.register(sub)``.
GROUPS = (run, status, watch, control, db, sim, check, paper, backtest, analysis)

# Errors that end a command with one line, by (module, class): looked up only in modules already
# imported, so catching them never imports a heavy module.
_KNOWN: tuple[tuple[str, str, int, str], ...] = (
    ("bot.cli.ledger", "NoLedger", EXIT_SCHEMA, "{exc}"),
    ("bot.store.db", "SchemaOutOfDate", EXIT_SCHEMA, "{exc}"),
    ("bot.lock", "BookLocked", EXIT_LOCKED, "{exc}; sending nothing"),
    ("bot.reconcile", "ReconciliationFailed", EXIT_RECONCILE, "refusing to start: {exc}"),
    ("bot.app", "UnsupportedMode", EXIT_USAGE, "{exc}"),
    ("bot.venues.errors", "AuthError", EXIT_USAGE, "venue settings refused: {exc}"),
    ("bot.venues.deribit.adapter", "UnsafeUrl", EXIT_USAGE, "venue settings refused: {exc}"),
    # The database did not answer or refused us: the driver's own words, never the URL.
    ("sqlalchemy.exc", "OperationalError", EXIT_FAILED, "the ledger's database: {exc.orig}"),
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("hedgebot")
    except PackageNotFoundError:
        return "unknown"


class _Version(argparse.Action):
    """``--version``, looked up only when asked (importlib.metadata is not free)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"hedgebot {version()}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="hedgebot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action=_Version, help="print hedgebot's version and exit")
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"settings file (default {DEFAULT_CONFIG}, skipped when absent; any other file "
        "named here must exist; /dev/null: the defaults)",
    )
    p.add_argument(
        "--log-format",
        choices=["auto", "console", "json"],
        default=None,
        metavar="FORMAT",
        help="auto (the default): console on a terminal, JSON lines otherwise",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings(
            args.config or DEFAULT_CONFIG, required=args.config not in (None, DEFAULT_CONFIG)
        )
    except ConfigError as exc:
        say(f"hedgebot: invalid settings ({len(exc.lines)} problem(s)):")
        for line in exc.lines:
            say(f"  {line}")
        return EXIT_USAGE
    from bot.logs import configure_logging

    keys = (settings.venue.api_key, settings.venue.api_secret)
    secrets = known_secrets([settings.database.url, settings.database.paper_url])
    secrets += [k.get_secret_value() for k in keys if k is not None]
    configure_logging(
        args.log_format or settings.logging.format, settings.logging.level, secrets=secrets
    )
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except UsageError as exc:
        say(f"hedgebot {args.command}: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say(f"hedgebot {args.command}: interrupted")
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as exc:  # e.g. the driver of a database URL's dialect
        say(
            f"hedgebot {args.command}: Python module {exc.name!r} is not installed; install it "
            f"into hedgebot's environment (.venv/bin/pip install {exc.name})"
        )
        return EXIT_USAGE
    except Exception as exc:
        known = _known(exc)
        if known is None:
            text = "".join(traceback.format_exception(exc))
            print(scrub(text, secrets), file=sys.stderr, end="")
            return EXIT_FAILED
        code, template = known
        message = template.format(exc=exc).replace(
            "`hedgebot db upgrade`", f"`{fix(args, 'db upgrade')}`"
        )
        print(scrub(f"hedgebot: {message}", secrets), file=sys.stderr)
        return code


def _known(exc: BaseException) -> tuple[int, str] | None:
    for module, name, code, template in _KNOWN:
        cls: Any = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return code, template
    return None


if __name__ == "__main__":
    raise SystemExit(main())
