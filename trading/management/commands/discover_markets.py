"""``discover_markets``: find an exchange's markets through ccxt (or a saved markets JSON) and
upsert them with precision and limits exactly as ccxt gives them.

Thin: parses options, calls :func:`trading.services.markets.markets_discover`, prints a table.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trading.exchanges import ExchangeRequestError, ExchangeUnavailable
from trading.services.markets import markets_discover


def _num(value) -> str:
    return "-" if value is None else f"{value:g}"


class Command(BaseCommand):
    help = (
        "Discover markets via ccxt load_markets + fetch_tickers and upsert them. With --markets-file "
        "the markets come from a saved JSON and no network call is made."
    )

    def add_arguments(self, parser):
        parser.add_argument("--exchange", default="binance", help="ccxt exchange id (default: binance)")
        parser.add_argument("--quote", help="only markets quoted in this asset, e.g. USDT")
        parser.add_argument("--type", dest="market_type", choices=["spot", "swap"], default="spot")
        parser.add_argument(
            "--min-quote-volume", type=float, help="only markets with 24 h quote volume >= N (quote currency)"
        )
        parser.add_argument("--markets-file", help="offline: load markets (and tickers, if present) from this JSON")
        parser.add_argument("--save-markets", help="write the loaded markets and tickers to this JSON for offline use")

    def handle(self, *args, exchange, quote, market_type, min_quote_volume, markets_file, save_markets, **options):
        try:
            report = markets_discover(
                exchange=exchange,
                quote=quote,
                market_type=market_type,
                min_quote_volume=min_quote_volume,
                markets_file=markets_file,
                save_markets_file=save_markets,
            )
        except (ExchangeUnavailable, ExchangeRequestError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for note in report.notes:
            self.stdout.write(f"note: {note}")
        header = f"{'symbol':<20} {'action':<9} {'price step':>12} {'amount step':>12} {'min amount':>12} {'min cost':>10} {'24h quote vol':>16}"
        self.stdout.write(header)
        for m in report.markets:
            limits = m.limits or {}
            self.stdout.write(
                f"{m.symbol:<20} {m.action:<9} {_num(m.precision.get('price')):>12} {_num(m.precision.get('amount')):>12} "
                f"{_num((limits.get('amount') or {}).get('min')):>12} {_num((limits.get('cost') or {}).get('min')):>10} "
                f"{_num(m.quote_volume):>16}"
            )
        self.stdout.write(
            f"{report.exchange} {market_type}: {report.considered} market(s) matched, {len(report.markets)} kept: "
            f"{report.count('added')} added, {report.count('updated')} updated, {report.count('unchanged')} unchanged"
        )
