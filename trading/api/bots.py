"""REST API for bots and what they produce (under /api/v1/), scoped to the requesting user.

- ``GET/POST /api/v1/bots/`` — list (with equity, P&L, trade counts) / create (validated by
  the strategy's schema; field errors as ``{"params.take_profit": ["must be >= 0.1%"]}``)
- ``GET/PATCH/DELETE /api/v1/bots/{id}/`` (``signal_strategies`` / ``signal_min_score``: the
  signal starts, changeable in any status)
- ``POST /api/v1/bots/{id}/start|pause|resume|stop|restart/`` — the status machine
  (409 on an invalid transition, 403 without ``trading.operate_bot``)
- ``POST /api/v1/bots/{id}/resume_trading/`` — lift a portfolio-risk pause (409 when none holds)
- ``POST /api/v1/bots/{id}/close_all/`` (``{"stop": true}`` optional),
  ``POST /api/v1/bots/{id}/close_position/`` (``{"trade": <id>}``)
- ``GET /api/v1/bots/{id}/performance/|active_trades/|events/|equity/``
- ``POST /api/v1/bots/{id}/clone/`` — a new paper bot with the same settings (201)
- ``GET/POST /api/v1/bot-presets/``, ``GET/DELETE /api/v1/bot-presets/{id}/`` — saved settings
- ``GET /api/v1/bot-trades/?bot=&status=``, ``GET /api/v1/bot-orders/?bot=&status=``

Ownership: every queryset is ``Model.objects.for_user(request.user)`` through
``accounts.mixins.OwnedViewSetMixin`` — another user's bot is a 404 (with or without a
``.json`` format suffix). All writes go through ``trading.services.bots``.

Bad input is a 400 naming the field, never a 500: every action body is read through a
serializer (a JSON string or list instead of an object: ``{"non_field_errors": [...]}``); a
bot deleted while a request on it runs (PATCH racing DELETE) is a 404.
"""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.mixins import OwnedViewSetMixin
from trading.api import bot_events
from trading.models import Bot, BotPreset, Order, Trade
from trading.selectors import bots as sel
from trading.selectors.risk import risk_status_data
from trading.services import bot_closing
from trading.services import bots as svc
from trading.services import deals as deal_svc
from trading.services import presets as presets_svc


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "invalid bot status transition"
    default_code = "conflict"


def _service_errors(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except Bot.DoesNotExist:  # gone (deleted by a concurrent request) or never the user's
        raise NotFound("no such bot (it may just have been deleted)") from None
    except svc.BotValidationError as exc:
        raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
    except svc.BotPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except (svc.BotTransitionError, svc.LiveTradingDisabled) as exc:
        raise Conflict(str(exc)) from None


class BotSerializer(serializers.ModelSerializer):
    markets = serializers.SerializerMethodField(help_text="ccxt symbols")
    open_trades = serializers.IntegerField(read_only=True)
    closed_trades = serializers.IntegerField(read_only=True)
    allowed_actions = serializers.SerializerMethodField()
    risk = serializers.JSONField(read_only=True, help_text="portfolio risk block (RiskConfig fields); null = off")
    risk_status = serializers.SerializerMethodField(help_text="pause / daily halt with reasons; null without risk")

    class Meta:
        model = Bot
        fields = [
            "id", "name", "strategy", "params", "risk", "risk_status", "markets", "timeframe", "mode", "capital", "quote", "status", "status_message",
            "feed", "replay_start", "replay_speed", "signal_strategies", "signal_min_score", "equity", "realized_pnl", "unrealized_pnl", "last_candle_at", "steps",
            "open_trades", "closed_trades", "allowed_actions", "started_at", "stopped_at", "created_at", "updated_at",
            "leverage", "margin_mode", "liquidation_buffer_pct", "exchange_account",
        ]  # fmt: skip
        read_only_fields = fields

    def get_markets(self, obj) -> list[str]:
        return sorted(m.symbol for m in obj.markets.all())

    def get_allowed_actions(self, obj) -> list[str]:
        return svc.bot_allowed_actions(obj)

    def get_risk_status(self, obj) -> dict | None:
        return risk_status_data(obj)


class BotWriteSerializer(serializers.Serializer):
    """Bot settings to create (POST) or change (PATCH) a bot. ``params`` are checked against the
    strategy's schema; errors name the field (``params.take_profit``)."""

    name = serializers.CharField(max_length=120)
    strategy = serializers.CharField(max_length=64)
    params = serializers.JSONField(required=False, default=dict)
    risk = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text="portfolio risk block, validated like a backtest's (strategies.risk.RiskConfig); null = off",
    )
    markets = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=100, help_text='ccxt symbols, e.g. ["BTC/USDT"]'
    )
    timeframe = serializers.CharField(default="1h")
    mode = serializers.CharField(default="paper")
    exchange_account = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**63 - 1,
        help_text="live mode: id of one of your exchange accounts (tested, with trade permission)",
    )
    capital = serializers.CharField(help_text="quote currency, e.g. '1000'")
    exchange = serializers.CharField(default="binance")
    feed = serializers.CharField(default="live")
    replay_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    replay_speed = serializers.FloatField(required=False, default=3600.0)
    # Checked by the bot service (one validator for form, API and clone): 400 naming the field.
    signal_strategies = serializers.JSONField(
        required=False, default=list, help_text='scan strategies whose signals start deals, e.g. ["fork_score"]'
    )
    signal_min_score = serializers.JSONField(
        required=False, default=0.0, help_text="lowest signal score (0..1) that starts a deal; 0 = every passing signal"
    )
    # USDT-M perpetual bots (markets like BTC/USDT:USDT); the service checks them and names the
    # field (trading.services.bot_perpetuals). A spot bot refuses them.
    leverage = serializers.JSONField(required=False, default=None, help_text="perpetuals: 1..125, capped by tier")
    margin_mode = serializers.CharField(required=False, allow_blank=True, default="", help_text="isolated or cross")
    liquidation_buffer_pct = serializers.JSONField(required=False, default=None, help_text="percent; 0 = off")


def _perpetual_of(data: dict, given) -> dict | None:
    """Pop the perpetual fields of validated ``data`` into the service's ``perpetual`` dict
    (only those in the request body ``given``); None when none was given."""
    fields = ("leverage", "margin_mode", "liquidation_buffer_pct")
    values = {k: data.pop(k, None) for k in fields}
    sent = {k: v for k, v in values.items() if k in given}
    return sent or None


BIGINT_MAX = 2**63 - 1


def _trade_id_field(help_text: str = "open trade id") -> serializers.IntegerField:
    message = "give the open trade's id"
    return serializers.IntegerField(
        min_value=1,
        max_value=BIGINT_MAX,
        help_text=help_text,
        error_messages={
            k: message for k in ("required", "invalid", "null", "min_value", "max_value", "max_string_length")
        },
    )


class CloseAllSerializer(serializers.Serializer):
    stop = serializers.BooleanField(required=False, default=False, help_text="stop the bot once the deals are closed")


class ClosePositionSerializer(serializers.Serializer):
    trade = _trade_id_field()


class AddFundsSerializer(ClosePositionSerializer):
    # Text or a number; the deal service parses it (Decimal) and names what is wrong.
    quote = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64, default=None)


class SetExitsSerializer(ClosePositionSerializer):
    take_profit = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64, default=None)
    stop_loss = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64, default=None)


def _body(serializer_class, request) -> dict:
    """``request.data`` validated by ``serializer_class``; 400 with the field errors (a body
    that is not a JSON object included)."""
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class TradeSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="market.symbol", read_only=True)

    class Meta:
        model = Trade
        fields = [
            "id", "bot", "symbol", "deal_id", "side", "status", "opened_at", "closed_at", "avg_entry", "amount", "cost", "fees",
            "realized_pnl", "exit_price", "exit_reason", "take_profit_price", "stop_loss_price", "safety_orders_filled",
            "safety_orders_max", "tags", "info", "leverage", "margin", "liquidation_price", "funding_paid",
        ]  # fmt: skip
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="market.symbol", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "bot", "trade", "symbol", "client_order_id", "exchange_order_id", "side", "type", "price", "stop_price",
            "amount", "filled", "average", "status", "tag", "deal_id", "reject_reason", "placed_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class BotViewSet(OwnedViewSetMixin, viewsets.ModelViewSet):
    queryset = Bot.objects.all()
    serializer_class = BotSerializer
    filterset_fields = ["status", "mode", "feed", "strategy"]

    def get_queryset(self):
        return sel.bots_for_user(self.request.user)

    def _bot(self) -> Bot:
        return self.get_object()

    def _bot_data(self, request, pk: int) -> dict:
        """The bot as answered after a write; 404 when a concurrent DELETE removed it since."""
        try:
            return BotSerializer(sel.bot_get(user=request.user, pk=pk)).data
        except Bot.DoesNotExist:
            raise NotFound("no such bot (it may just have been deleted)") from None

    @extend_schema(request=BotWriteSerializer, responses=BotSerializer)
    def create(self, request, *args, **kwargs):
        data = BotWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        perpetual = _perpetual_of(values, request.data)
        bot = _service_errors(svc.bot_create, user=request.user, perpetual=perpetual, **values)
        return Response(self._bot_data(request, bot.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=BotWriteSerializer, responses=BotSerializer)
    def update(self, request, *args, **kwargs):
        bot = self._bot()
        data = BotWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = {k: v for k, v in data.validated_data.items() if k in request.data}
        changes.pop("exchange", None)
        perpetual = _perpetual_of(changes, request.data)
        if perpetual is not None:  # a PATCH of one setting keeps the others
            changes["perpetual"] = {**(bot.perpetual or {}), **perpetual}
        _service_errors(svc.bot_update, user=request.user, bot=bot, **changes)
        return Response(self._bot_data(request, bot.pk))

    def destroy(self, request, *args, **kwargs):
        _service_errors(svc.bot_delete, user=request.user, bot=self._bot())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _transition(self, request, name):
        bot = _service_errors(svc.BOT_ACTIONS[name], user=request.user, bot=self._bot())
        return Response(self._bot_data(request, bot.pk))

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a new bot (created → running); it takes its first step at once. 409 when the bot's status does not allow it."""
        return self._transition(request, "start")

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Pause a running bot: no steps; its open orders and deals stay. 409 when the bot's status does not allow it."""
        return self._transition(request, "pause")

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume a paused bot. 409 when the bot's status does not allow it."""
        return self._transition(request, "resume")

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        """Stop the bot (running, paused or error → stopped); open deals stay open (close them first with close_all). 409 when the bot's status does not allow it."""
        return self._transition(request, "stop")

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def restart(self, request, pk=None):
        """Run a stopped or errored bot again, continuing from its saved state. 409 when the bot's status does not allow it."""
        return self._transition(request, "restart")

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def resume_trading(self, request, pk=None):
        """Lift a drawdown pause / daily-loss halt of the bot's portfolio risk (409 when none holds)."""
        bot = self._bot()
        _service_errors(svc.bot_resume_trading, user=request.user, bot=bot)
        return Response(self._bot_data(request, bot.pk))

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        """A new paper bot (not started) with this bot's settings, named "<name> (copy)"."""
        clone = _service_errors(presets_svc.bot_clone, user=request.user, bot=self._bot())
        return Response(self._bot_data(request, clone.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CloseAllSerializer,
        responses={202: inline_serializer("CloseAllAccepted", {"open_deals": serializers.IntegerField()})},
    )
    @action(detail=True, methods=["post"])
    def close_all(self, request, pk=None):
        """Close every open deal at market on the bot's next step (running or paused bots, else
        409); ``stop: true`` also stops the bot once they are closed. Answers the number of open deals."""
        stop = _body(CloseAllSerializer, request)["stop"]
        n = _service_errors(bot_closing.bot_close_all, user=request.user, bot=self._bot(), stop=stop)
        return Response({"open_deals": n}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=ClosePositionSerializer,
        responses={202: TradeSerializer},
    )
    @action(detail=True, methods=["post"])
    def close_position(self, request, pk=None):
        """Close one open deal (``trade``: its id) at market on the bot's next step (running or paused
        bots, else 409); 400 when the trade is not an open deal of this bot."""
        trade_id = _body(ClosePositionSerializer, request)["trade"]
        bot = self._bot()
        try:
            trade = _service_errors(bot_closing.bot_close_position, user=request.user, bot=bot, trade=trade_id)
        except Trade.DoesNotExist:
            raise ValidationError({"trade": ["no such open trade of this bot"]}) from None
        return Response(TradeSerializer(trade).data, status=status.HTTP_202_ACCEPTED)

    def _deal_action(self, request, service, body: dict):
        """An action on one open deal (``trade`` id in the validated ``body``) through the deal
        services: 202 with the deal; 400 bad input; 409 refused (bot not running, deal closed ...)."""
        kwargs = dict(body)
        trade_id = kwargs.pop("trade")
        try:
            trade = _service_errors(
                getattr(deal_svc, service), user=request.user, bot=self._bot(), trade=trade_id, **kwargs
            )
        except Trade.DoesNotExist:
            raise ValidationError({"trade": ["no such trade of this bot"]}) from None
        return Response(TradeSerializer(trade).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=AddFundsSerializer, responses={202: TradeSerializer})
    @action(detail=True, methods=["post"])
    def add_funds(self, request, pk=None):
        """Add ``quote`` (quote currency) to the open deal ``trade``: a manual safety order at
        market on the bot's next step."""
        return self._deal_action(request, "deal_add_funds", _body(AddFundsSerializer, request))

    @extend_schema(request=SetExitsSerializer, responses={202: TradeSerializer})
    @action(detail=True, methods=["post"])
    def set_exits(self, request, pk=None):
        """Change the open deal ``trade``'s ``take_profit`` / ``stop_loss`` (percent from the
        average entry; omitted keeps it) on the bot's next step."""
        return self._deal_action(request, "deal_set_exits", _body(SetExitsSerializer, request))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def performance(self, request, pk=None):
        """Closed-deal statistics: ``trades``, ``wins``, ``losses``, ``win_rate_pct``, ``total_pnl``,
        ``avg_pnl``, ``best``, ``worst`` (quote currency, decimal strings), ``profit_factor``,
        ``sharpe``, ``max_drawdown_pct``, ``avg_duration_s``, ``equity``, ``return_pct``."""
        perf = sel.bot_performance(bot=self._bot())
        return Response({k: (str(v) if hasattr(v, "as_tuple") else v) for k, v in perf.items()})

    @extend_schema(responses={200: {"type": "array", "items": {"type": "object"}}})
    @action(detail=True, methods=["get"])
    def active_trades(self, request, pk=None):
        """Open deals with the current price, unrealized P&L, safety orders filled/max, take-profit
        price, next safety order price and the ladder."""
        return Response(sel.bot_active_trades(bot=self._bot()))

    @extend_schema(
        parameters=[bot_events.BotEventsQuery], responses=bot_events.BotEventSerializer(many=True), filters=False
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def events(self, request, pk=None):
        """The decision log (``?log=decisions``, market time) or the bot activity
        (``?log=activity``, wall time) — one clock per list (``trading/api/bot_events.py``)."""
        return Response(
            bot_events.bot_events_response(user=request.user, bot=self._bot(), query_params=request.query_params)
        )

    @extend_schema(responses={200: {"type": "array", "items": {"type": "object"}}})
    @action(detail=True, methods=["get"])
    def equity(self, request, pk=None):
        """Equity curve, oldest first, at most 1000 points: ``time_ms``, ``equity``, ``realized``,
        ``unrealized`` (quote currency)."""
        return Response(sel.bot_equity_series(bot=self._bot()))


class _BotChildFilter(filters.FilterSet):
    bot = filters.NumberFilter(field_name="bot_id")
    status = filters.CharFilter(field_name="status")


class TradeFilter(_BotChildFilter):
    class Meta:
        model = Trade
        fields = ["bot", "status"]


class OrderFilter(_BotChildFilter):
    class Meta:
        model = Order
        fields = ["bot", "status"]


class TradeViewSet(OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Trade.objects.all()
    serializer_class = TradeSerializer
    filterset_class = TradeFilter

    def get_queryset(self):
        return super().get_queryset().select_related("market")


class OrderViewSet(OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    filterset_class = OrderFilter

    def get_queryset(self):
        return super().get_queryset().select_related("market")


class BotPresetSerializer(serializers.ModelSerializer):
    risk = serializers.JSONField(required=False, allow_null=True, default=None)
    params = serializers.JSONField(required=False, default=dict)
    perpetual = serializers.JSONField(required=False, allow_null=True, default=None)

    class Meta:
        model = BotPreset
        fields = ["id", "name", "strategy", "params", "risk", "perpetual", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class BotPresetViewSet(
    OwnedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """``/api/v1/bot-presets/``: the user's presets (strategy, params, risk block); create
    validates like a bot (400 with ``params.<x>`` / ``risk.<x>`` errors), delete."""

    queryset = BotPreset.objects.all()
    serializer_class = BotPresetSerializer

    def create(self, request, *args, **kwargs):
        data = BotPresetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preset = _service_errors(presets_svc.preset_create, user=request.user, **data.validated_data)
        return Response(BotPresetSerializer(preset).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        _service_errors(presets_svc.preset_delete, user=request.user, preset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


VIEWSETS = [
    ("bots", BotViewSet, "bot"),
    ("bot-trades", TradeViewSet, "bot-trade"),
    ("bot-orders", OrderViewSet, "bot-order"),
    ("bot-presets", BotPresetViewSet, "bot-preset"),
]
