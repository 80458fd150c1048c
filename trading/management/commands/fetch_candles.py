"""``fetch_candles``: download closed candles from an exchange through ccxt and upsert them.

Thin: parses options, calls :func:`trading.services.candles.candles_fetch`, prints.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from trading.exchanges import ExchangeRequestError, ExchangeUnavailable
from trading.services.candle_fetch import funding_fetch
from trading.services.candles import CandleFetchError, candles_fetch, fmt_ms


def parse_utc(value: str) -> datetime:
    """``2024-01-01``, ``2024-01-01T12:00``, ``2024-01-01 12:00:00+00:00`` or epoch ms -> aware UTC."""
    value = value.strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; use 2024-01-01, 2024-01-01T12:00 (UTC) or epoch ms") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Command(BaseCommand):
    help = (
        "Fetch closed OHLCV candles through ccxt fetch_ohlcv (pages of 1000, rate-limited) and upsert them. "
        "Resumes after the last stored candle; the still-open candle is never stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--exchange", default="binance", help="ccxt exchange id (default: binance)")
        parser.add_argument("--symbols", required=True, help="comma-separated ccxt symbols, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--timeframe", default="1h", help="ccxt timeframe: 1m 5m 15m 30m 1h 4h 1d (default 1h)")
        parser.add_argument("--since", required=True, type=parse_utc, help="first open time, UTC (2024-01-01)")
        parser.add_argument("--until", type=parse_utc, help="end (exclusive), UTC; default: now")
        parser.add_argument("--market-type", choices=["spot", "swap"], default="spot")
        parser.add_argument(
            "--price", choices=["last", "mark"], default="last", help="last-price or (swap) mark-price candles"
        )
        parser.add_argument(
            "--funding", action="store_true", help="fetch funding-rate history (swap) instead of candles"
        )

    def handle(self, *args, exchange, symbols, timeframe, since, until, market_type, price, funding, **options):
        symbol_list = [s.strip() for s in symbols.split(",") if s.strip()]
        if funding:
            return self._funding(exchange, symbol_list, since, until, market_type)
        try:
            report = candles_fetch(
                exchange=exchange,
                symbols=symbol_list,
                timeframe=timeframe,
                since=since,
                until=until,
                market_type=market_type,
                price=price,
                progress=self.stdout.write,
            )
        except (ExchangeUnavailable, ExchangeRequestError, CandleFetchError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for item in report.symbols:
            span = f" {fmt_ms(item.first_ms)} → {fmt_ms(item.last_ms)} UTC" if item.first_ms is not None else ""
            self.stdout.write(
                f"{item.symbol} {report.timeframe}{' mark' if price == 'mark' else ''}{span}: "
                f"{item.requests} request(s), {item.received} received, "
                f"{item.inserted} inserted, {item.updated} updated, {item.unchanged} unchanged, "
                f"{item.dropped_open} open candle(s) dropped"
            )
            for gap in item.gaps:
                self.stdout.write(f"  {gap}")

    def _funding(self, exchange, symbols, since, until, market_type):
        if market_type != "swap":
            raise CommandError("--funding needs --market-type swap")
        try:
            results = funding_fetch(
                exchange=exchange, symbols=symbols, since=since, until=until, progress=self.stdout.write
            )
        except (ExchangeUnavailable, ExchangeRequestError, CandleFetchError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for item in results:
            span = f" {fmt_ms(item.first_ms)} → {fmt_ms(item.last_ms)} UTC" if item.first_ms is not None else ""
            self.stdout.write(
                f"{item.symbol} funding{span}: {item.requests} request(s), {item.received} received, "
                f"{item.inserted} inserted, {item.updated} updated, {item.unchanged} unchanged"
            )
