"""Backtest services: validate, persist and execute backtest runs.

``backtest_create`` validates everything and saves a queued :class:`BacktestRun` (nothing is
saved when the inputs are bad); ``backtest_execute`` loads candles from the database, runs
the one engine through :func:`strategies.backtest.run_backtest`, and stores the report, the
metrics and one :class:`BacktestTrade` per closed deal in one transaction. The Celery task
``strategies.tasks.backtest_run`` (queue ``research``) calls ``backtest_execute``; progress
(0..1) is written to the run as it goes so pages can show a bar.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from market7.timeframes import dt_to_ms, timeframe_ms
from strategies.backtest import BacktestConfig, BacktestInputError, run_backtest
from strategies.engine import Candles, Feed
from strategies.models import BacktestRun, BacktestTrade
from strategies.risk import risk_config_with_symbol_multipliers
from trading.brokers import market_spec
from trading.models import Candle, Market
from trading.selectors.candles import candles_arrays
from trading.selectors.watchlist import watchlist_risk_multipliers
from trading.services.bot_validation import fmt_minute, watched_symbols_check
from trading.services.feeds import WARMUP_CANDLES  # the paper bots' warm-up: same first candle

log = logging.getLogger(__name__)


class BacktestError(ValueError):
    """Bad backtest inputs; the message is one line, for users."""


@dataclass(frozen=True)
class BacktestInputs:
    """Validated inputs: markets resolved, times aware UTC, params validated by the schema."""

    strategy: str
    params: dict[str, Any]
    markets: tuple[Market, ...]
    timeframe: str
    start: datetime
    end: datetime
    capital: Decimal
    fee_bps: Decimal
    slippage_bps: Decimal
    exchange: str
    risk: dict[str, Any] | None
    perpetual: dict[str, Any] | None = None  # swap runs: PerpetualSettings.to_dict()


def backtest_validate(
    *,
    strategy: str,
    symbols: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    capital: Decimal | float | str,
    params: dict[str, Any] | None = None,
    fee_bps: Decimal | float | str = 10,
    slippage_bps: Decimal | float | str = 5,
    exchange: str = "binance",
    market_type: str = "spot",
    leverage: Any = None,
    margin_mode: str | None = None,
    liquidation_buffer_pct: Any = None,
) -> BacktestInputs:
    """Check every input; raise :class:`BacktestError` with a one-line reason on the first bad one.

    ``start``/``end`` are aware datetimes: open times of the first and last candle included.
    ``params`` may carry a ``"risk"`` section (a ``strategies.risk.RiskConfig`` dict).
    The window must hold candles of every market and lie inside the days the stored candles
    cover (:func:`_check_window`); a market-naming parameter (``btc_symbol``) must name a
    stored market of ``exchange`` when the BTC filter is on or it is given.

    Perpetuals: ``market_type="swap"`` with ``leverage`` (1..125, capped by each market's first
    tier), ``margin_mode`` (``isolated`` default, or ``cross``) and ``liquidation_buffer_pct``
    (0 = off); every symbol must be a stored ``XXX/USDT:USDT`` swap market with a bundled tier
    table, and its stored funding rates must cover the window
    (:mod:`trading.services.perpetuals`). A saved run keeps them as ``params["perpetual"]``,
    which is read back here when the explicit arguments are not given. A swap market in a
    spot run, or leverage settings on spot: BacktestError.
    """
    from strategies.base import ParamError
    from strategies.registry import StrategyNotFound, get_strategy

    try:
        cls = get_strategy(strategy)
    except StrategyNotFound as exc:
        raise BacktestError(str(exc.args[0])) from None
    params = dict(params or {})
    risk = params.pop("risk", None)
    stored_perp = params.pop("perpetual", None)
    if stored_perp is not None and leverage is None:
        market_type = "swap"
        leverage = stored_perp.get("leverage")
        margin_mode = stored_perp.get("margin_mode")
        liquidation_buffer_pct = stored_perp.get("liquidation_buffer_pct")
    given_params = dict(params)
    try:
        params = cls.validate_params(params)
    except ParamError as exc:
        errors = getattr(exc, "errors", None) or {}
        raise BacktestError(
            "invalid params: " + ("; ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or str(exc))
        ) from None
    if risk is not None:
        from strategies.risk import RiskConfig

        try:
            risk = RiskConfig.from_dict(risk).to_dict()
        except (TypeError, ValueError) as exc:
            raise BacktestError(f"invalid risk config: {exc}") from None
    try:
        timeframe_ms(timeframe)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None
    if start.tzinfo is None or end.tzinfo is None:
        raise BacktestError("start and end must be timezone-aware (UTC)")
    if end < start:
        raise BacktestError(f"end {end:%Y-%m-%d %H:%M} is before start {start:%Y-%m-%d %H:%M}")
    try:
        capital, fee_bps, slippage_bps = Decimal(str(capital)), Decimal(str(fee_bps)), Decimal(str(slippage_bps))
    except ArithmeticError:
        raise BacktestError("capital, fee-bps and slippage-bps must be numbers") from None
    if capital <= 0:
        raise BacktestError(f"capital must be positive, got {capital}")
    if not (0 <= fee_bps <= 1000) or not (0 <= slippage_bps <= 1000):
        raise BacktestError("fee-bps and slippage-bps must be between 0 and 1000")
    symbols = [s.strip() for s in symbols if s.strip()]
    if not symbols:
        raise BacktestError("no symbols given")
    found = {
        m.symbol: m
        for m in Market.objects.filter(exchange__code=exchange, symbol__in=symbols).select_related("exchange")
    }
    missing = [s for s in symbols if s not in found]
    if missing:
        raise BacktestError(f"unknown symbol(s) on {exchange}: {', '.join(missing)}")
    markets = tuple(found[s] for s in sorted(set(symbols)))
    perpetual = _perpetual_check(markets, market_type, leverage, margin_mode, liquidation_buffer_pct)
    for market in markets:
        if not market.candles.filter(timeframe=timeframe, open_time__gte=start, open_time__lte=end).exists():
            raise BacktestError(
                f"no {timeframe} candles for {market.symbol} between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
            )
    _check_window(markets, timeframe, start, end)
    if perpetual is not None:
        from trading.services.perpetuals import PerpetualError, funding_coverage_check

        try:
            funding_coverage_check(markets, dt_to_ms(start), dt_to_ms(end))
        except PerpetualError as exc:
            raise BacktestError(str(exc)) from None
    # a parameter equal to its default is as good as not given: a stored run (whose params are
    # the validated ones, defaults included) must re-validate exactly as it was created
    defaults = {p.name: p.default for p in cls.param_specs()}
    given_params = {k: v for k, v in given_params.items() if k not in defaults or v != defaults[k]}
    if watched := watched_symbols_check(params, given_params, markets[0].exchange_id, exchange):
        raise BacktestError("invalid params: " + "; ".join(f"{k[7:]}: {v}" for k, v in watched.items()))
    return BacktestInputs(
        strategy, params, markets, timeframe, start, end, capital, fee_bps, slippage_bps, exchange, risk, perpetual
    )


def _perpetual_check(markets, market_type, leverage, margin_mode, buffer) -> dict[str, Any] | None:
    """The validated perpetual settings (dict) of a swap run, None for spot; BacktestError."""
    from trading.services.perpetuals import PerpetualError, perpetual_settings_validate

    if market_type not in ("spot", "swap"):
        raise BacktestError(f"market type must be spot or swap, got {market_type!r}")
    if market_type == "spot":
        if leverage is not None or margin_mode is not None or buffer is not None:
            raise BacktestError("leverage, margin mode and liquidation buffer need market type swap")
        swaps = [m.symbol for m in markets if m.type == Market.Type.SWAP]
        if swaps:
            raise BacktestError(f"{', '.join(swaps)}: perpetual market(s); run them with market type swap")
        return None
    try:
        return perpetual_settings_validate(
            markets=markets,
            leverage=1 if leverage is None else leverage,
            margin_mode=margin_mode or "isolated",
            liquidation_buffer_pct=buffer or 0,
        ).to_dict()
    except PerpetualError as exc:
        raise BacktestError(str(exc)) from None


def _check_window(markets: tuple[Market, ...], timeframe: str, start: datetime, end: datetime) -> None:
    """The window must lie inside the days the stored candles of ``markets`` cover (from the
    first candle's day to the last candle's day, UTC, over all the markets): a window of years
    without data (``0001-01-01 .. 9999-12-31``) would be queued and then overflow or run for
    hours on nothing. Raises :class:`BacktestError` naming the stored range."""
    span = Candle.objects.filter(market__in=markets, timeframe=timeframe).aggregate(
        first=Min("open_time"), last=Max("open_time")
    )
    first, last = span["first"], span["last"]
    first_day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    after_last_day = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    if start < first_day or end >= after_last_day:
        raise BacktestError(
            f"the window {fmt_minute(start)} .. {fmt_minute(end)} UTC reaches outside the stored {timeframe} "
            f"candles of {', '.join(m.symbol for m in markets)}: {fmt_minute(first)} .. {fmt_minute(last)} UTC"
        )


def backtest_create(*, user, enqueue: bool = True, name: str = "", **inputs: Any) -> BacktestRun:
    """Validate (see :func:`backtest_validate`), save a queued run owned by ``user`` and, with
    ``enqueue``, start it on the ``research`` queue after commit. Bad inputs: BacktestError,
    nothing saved.

    With a ``risk`` section, ``user``'s watchlist risk multipliers of the run's markets are added
    to its ``symbol_multipliers`` under the ones it sets itself — what a paper bot of that user
    runs with (``trading.services.runner.bot_risk_config``) — and stored in the run's params, so
    the run shows and repeats the sizes it used."""
    v = backtest_validate(**inputs)
    risk = v.risk
    if risk is not None and getattr(user, "pk", None) is not None:  # the user's watchlist multipliers, as a bot's
        risk = risk_config_with_symbol_multipliers(
            risk, watchlist_risk_multipliers(owner_id=user.pk, markets=v.markets)
        )
    with transaction.atomic():
        run = BacktestRun.objects.create(
            owner=user,
            name=name,
            strategy=v.strategy,
            params={
                **v.params,
                **({"risk": risk} if risk is not None else {}),
                **({"perpetual": v.perpetual} if v.perpetual is not None else {}),
            },
            symbols=[m.symbol for m in v.markets],
            exchange=v.exchange,
            timeframe=v.timeframe,
            start=v.start,
            end=v.end,
            capital=v.capital,
            fee_bps=v.fee_bps,
            slippage_bps=v.slippage_bps,
        )
        if enqueue:
            from strategies.tasks import backtest_run

            transaction.on_commit(lambda: backtest_run.apply_async(args=[run.pk], queue="research"))
    return run


def _feed(inputs: BacktestInputs) -> Feed:
    tf = timeframe_ms(inputs.timeframe)
    origin = dt_to_ms(inputs.start) - WARMUP_CANDLES * tf
    markets = list(inputs.markets)
    btc = (inputs.params.get("btc_symbol") or "BTC/USDT") if inputs.params.get("btc_market_filter_enabled") else None
    if btc and btc not in {m.symbol for m in markets}:
        extra = Market.objects.filter(exchange__code=inputs.exchange, symbol=btc).first()
        if extra is None:
            raise BacktestError(f"btc_market_filter needs {btc} candles on {inputs.exchange}")
        markets.append(extra)
    data = {}
    for m in markets:
        a = candles_arrays(market=m, timeframe=inputs.timeframe, start=origin, end=dt_to_ms(inputs.end) + 1)
        data[m.symbol] = Candles.from_arrays(a["time"], a["open"], a["high"], a["low"], a["close"], a["volume"])
    if inputs.perpetual is None:
        return Feed(inputs.timeframe, data)
    from trading.services.perpetuals import perpetual_feed_parts

    mark, funding = perpetual_feed_parts(inputs.markets, inputs.timeframe, origin, dt_to_ms(inputs.end))
    return Feed(inputs.timeframe, data, mark=mark, funding=funding)


def backtest_specs(inputs: BacktestInputs) -> list:
    """The engine :class:`MarketSpec` of each traded market: spot as stored, or swap with the
    run's leverage, margin mode and buffer (:func:`trading.services.perpetuals.perpetual_spec`)."""
    if inputs.perpetual is None:
        return [market_spec(m) for m in inputs.markets]
    from trading.services.perpetuals import perpetual_spec

    return [perpetual_spec(m, inputs.perpetual) for m in inputs.markets]


def _inputs_of(run: BacktestRun) -> BacktestInputs:
    return backtest_validate(
        strategy=run.strategy,
        symbols=list(run.symbols),
        timeframe=run.timeframe,
        start=run.start,
        end=run.end,
        capital=run.capital,
        params=dict(run.params),
        fee_bps=run.fee_bps,
        slippage_bps=run.slippage_bps,
        exchange=run.exchange,
    )


def backtest_execute(*, run_id: int) -> BacktestRun:
    """Run a saved backtest and store its results; failures set status ``failed`` with the
    message (never a half-written run). Returns the refreshed run."""
    claimed = BacktestRun.objects.filter(pk=run_id, status=BacktestRun.Status.QUEUED).update(
        status=BacktestRun.Status.RUNNING, progress=0.0
    )
    run = BacktestRun.objects.get(pk=run_id)
    if not claimed:
        log.info("backtest %s is %s; not running it again", run_id, run.status)
        return run
    started = time.monotonic()
    last = [0.0, started]

    def progress(done: int, total: int) -> None:
        frac = done / total if total else 1.0
        now = time.monotonic()
        if frac - last[0] >= 0.02 and now - last[1] >= 0.25:
            last[0], last[1] = frac, now
            BacktestRun.objects.filter(pk=run_id).update(progress=round(frac, 4))

    try:
        inputs = _inputs_of(run)
        config = BacktestConfig(
            strategy=inputs.strategy,
            params=inputs.params,
            symbols=tuple(m.symbol for m in inputs.markets),
            timeframe=inputs.timeframe,
            start_ms=dt_to_ms(inputs.start),
            end_ms=dt_to_ms(inputs.end),
            capital=float(inputs.capital),
            fee_bps=float(inputs.fee_bps),
            slippage_bps=float(inputs.slippage_bps),
            risk=inputs.risk,
            perpetual=inputs.perpetual,
        )
        result, report = run_backtest(config, _feed(inputs), backtest_specs(inputs), progress=progress)
    except (BacktestError, BacktestInputError) as exc:
        return _fail(run_id, str(exc))
    except Exception as exc:  # a bug must still leave a visible failed run, not a stuck one
        log.exception("backtest %s crashed", run_id)
        return _fail(run_id, f"{type(exc).__name__}: {exc}")

    with transaction.atomic():
        run = BacktestRun.objects.select_for_update().get(pk=run_id)
        BacktestTrade.objects.filter(run=run).delete()
        BacktestTrade.objects.bulk_create(
            [
                BacktestTrade(
                    run=run,
                    symbol=t["symbol"],
                    side=t["side"],
                    opened_at=_parse_iso(t["opened_at"]),
                    closed_at=_parse_iso(t["closed_at"]),
                    entry_price=_dec(t["entry_price"]),
                    exit_price=_dec(t["exit_price"]),
                    amount=_dec(t["amount"]),
                    cost=_dec(t["cost"]),
                    fees=_dec(t["fees"]),
                    pnl=_dec(t["pnl"]),
                    pnl_pct=t["pnl_pct"],
                    exit_reason=t["exit_reason"],
                    safety_orders_filled=t["safety_orders_filled"],
                    tags=t["tags"],
                    orders=t["orders"],
                )
                for t in report["trades"]
            ]
        )
        run.metrics = report["metrics"]
        run.report = report
        run.status = BacktestRun.Status.DONE
        run.progress = 1.0
        run.error = ""
        run.candle_steps = int(result.candle_steps)
        run.elapsed_s = round(time.monotonic() - started, 3)
        run.finished_at = timezone.now()
        run.save()
    return run


def _fail(run_id: int, message: str) -> BacktestRun:
    BacktestRun.objects.filter(pk=run_id).update(
        status=BacktestRun.Status.FAILED, error=message[:2000], finished_at=timezone.now()
    )
    return BacktestRun.objects.get(pk=run_id)


def _dec(value: float | None) -> Decimal:
    return Decimal(repr(float(value or 0.0)))


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse_day_range(start: str, end: str) -> tuple[datetime, datetime]:
    """``YYYY-MM-DD`` (or full ISO) strings -> (start, end) aware UTC; a date-only ``end``
    includes that whole day (up to its last candle). Bad text: BacktestError."""
    from datetime import UTC

    def parse(text: str, name: str) -> tuple[datetime, bool]:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BacktestError(f"--{name} {text!r} is not a date (YYYY-MM-DD)") from None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)), len(text) == 10

    s, _ = parse(start, "start")
    e, date_only = parse(end, "end")
    if date_only:
        try:
            e = e + timedelta(days=1) - timedelta(milliseconds=1)
        except OverflowError:  # 9999-12-31: its day ends at the last representable time
            e = datetime.max.replace(tzinfo=UTC)
    return s, e


def backtest_feed(inputs: BacktestInputs) -> Feed:
    """The candles a backtest of ``inputs`` runs on (with the paper bots' warm-up before the
    start and the BTC reference where the strategy needs it), as a :class:`Feed`; also used by
    ML training (:mod:`mlops.services.pipeline`) so a model learns from the same data."""
    return _feed(inputs)
