"""Read-only REST API for market data (authenticated users, any role):

- ``GET /api/v1/exchanges/``
- ``GET /api/v1/markets/?exchange=binance&type=spot&quote=USDT&base=BTC&symbol=BTC/USDT&active=true``
  — each market with its 24 h stats (``trading.selectors.markets``; same figures as the page)
- ``GET /api/v1/markets/{id}/``
- ``GET /api/v1/markets/{id}/candles/?timeframe=1h&start=2025-08-01T00:00:00Z&end=...&limit=&offset=``
  — candles ``start <= open_time < end``, oldest first, paginated (limit/offset, default 100,
  at most 5000 per page). A bound that does not parse, has a UTC offset beyond ±15:59 or leaves
  years 1..9999 in UTC is a 400 naming it (``{"start": ["time-zone offset +23:00 is out of
  range (-15:59 to +15:59)"]}``).

Market data is shared, not user-owned, so there is no ownership scoping here; writes go
through the import services and the admin.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError

from market7.pagination import LimitOffsetPagination
from trading.models.market import Candle, Exchange, Market, Timeframe
from trading.selectors import markets as selectors


class ExchangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Exchange
        fields = ["id", "code", "name", "active"]


class MarketSerializer(serializers.ModelSerializer):
    exchange = serializers.SlugRelatedField(slug_field="code", read_only=True, help_text="ccxt exchange id")
    slug = serializers.SerializerMethodField(help_text="URL slug of the page /markets/<exchange>/<slug>/")
    stats_timeframe = serializers.CharField(read_only=True, allow_null=True, help_text="timeframe the 24 h stats use")
    last_open = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="open time of the last candle, UTC"
    )
    last_close = serializers.FloatField(read_only=True, allow_null=True, help_text="quote currency")
    change_24h_pct = serializers.FloatField(read_only=True, allow_null=True, help_text="percent, 1.5 = +1.5 %")
    quote_volume_24h = serializers.FloatField(
        read_only=True, allow_null=True, help_text="sum(close * volume), quote currency"
    )
    high_24h = serializers.FloatField(read_only=True, allow_null=True)
    low_24h = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Market
        fields = [
            "id", "exchange", "symbol", "slug", "exchange_symbol", "base", "quote", "settle", "type", "active",
            "precision", "limits", "maker_fee", "taker_fee", "updated_at",
            "stats_timeframe", "last_open", "last_close", "change_24h_pct", "quote_volume_24h", "high_24h", "low_24h",
        ]  # fmt: skip

    def get_slug(self, obj: Market) -> str:
        return selectors.market_slug(obj.symbol)


class CandleSerializer(serializers.Serializer):
    """One closed candle; prices in quote currency, volume in base units (float64)."""

    open_time = serializers.DateTimeField(help_text="candle open time, UTC")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField()


class MarketFilter(filters.FilterSet):
    exchange = filters.CharFilter(field_name="exchange__code", help_text="ccxt exchange id, e.g. binance")
    type = filters.ChoiceFilter(choices=Market.Type.choices)
    quote = filters.CharFilter()
    base = filters.CharFilter()
    symbol = filters.CharFilter(help_text="ccxt unified symbol, e.g. BTC/USDT or BTC/USDT:USDT")
    active = filters.BooleanFilter()

    class Meta:
        model = Market
        fields = ["exchange", "type", "quote", "base", "symbol", "active"]


#: The widest UTC offset a bound may carry: Postgres refuses a time-zone displacement of 16 h or
#: more (``DataError``); offsets in use run from -12:00 to +14:00.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date/time converted to UTC here, so the database only ever sees UTC: an
    offset beyond :data:`MAX_UTC_OFFSET` or a time outside years 1..9999 once in UTC (e.g.
    ``0001-01-01T00:00:00+01:00``) is a form error (400), not a ``DataError``/``OverflowError``."""

    def to_python(self, value):
        dt = super().to_python(value)
        if dt is None:
            return None
        offset = dt.utcoffset() or timedelta(0)
        if abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError(
                f"time-zone offset {_offset_text(offset)} is out of range (-15:59 to +15:59)", code="offset"
            )
        try:
            return dt.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                "date/time is out of range once in UTC (years 1 to 9999)", code="range"
            ) from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class CandleFilter(filters.FilterSet):
    timeframe = filters.ChoiceFilter(choices=Timeframe.choices, required=True)
    start = UtcIsoDateTimeFilter(
        field_name="open_time", lookup_expr="gte", help_text="ISO 8601; open_time >= start; offset within ±15:59"
    )
    end = UtcIsoDateTimeFilter(
        field_name="open_time", lookup_expr="lt", help_text="ISO 8601; open_time < end; offset within ±15:59"
    )

    class Meta:
        model = Candle
        fields = ["timeframe", "start", "end"]


class CandlePagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 5000


class ExchangeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Exchange.objects.all()
    serializer_class = ExchangeSerializer
    filterset_fields = ["code", "active"]


@extend_schema_view(
    list=extend_schema(summary="Markets with 24 h stats", tags=["markets"]),
    retrieve=extend_schema(summary="One market with 24 h stats", tags=["markets"]),
)
class MarketViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = MarketSerializer
    filterset_class = MarketFilter

    def get_queryset(self):
        if self.action == "candles":
            return Market.objects.all()
        return selectors.markets_with_stats().order_by("exchange__code", "symbol")

    @extend_schema(
        summary="Candles of one market",
        tags=["markets"],
        parameters=[
            OpenApiParameter("timeframe", OpenApiTypes.STR, enum=Timeframe.values, required=True),
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="open_time >= start (ISO 8601)"),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="open_time < end (ISO 8601)"),
        ],
        responses=CandleSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=CandlePagination, filterset_class=None)
    def candles(self, request, pk=None):
        market = self.get_object()
        form = CandleFilter(request.query_params, queryset=Candle.objects.filter(market=market))
        if not form.is_valid():
            raise ValidationError(form.errors)
        qs = form.qs.order_by("open_time").values("open_time", "open", "high", "low", "close", "volume")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(CandleSerializer(page, many=True).data)


# (url prefix, viewset, basename) — registered by trading/api_urls.py.
VIEWSETS = [
    ("exchanges", ExchangeViewSet, "exchange"),
    ("markets", MarketViewSet, "market"),
]
