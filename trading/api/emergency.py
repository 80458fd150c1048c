"""``POST /api/v1/trading/emergency-stop/`` — the emergency stop of all of the user's bots.

Body: ``{"close_positions": false}`` (optional). Stops every running or paused bot of the
requesting user; live bots' open orders are cancelled at the exchange and, with
``close_positions``, their deals closed at market (``trading.services.emergency``). Answer
(200): ``{"close_positions", "paper_bots": [ids], "live_bots": [ids], "failed": n,
"results": [{"bot_id", "account_id", "action", "symbol", "client_order_id", "outcome",
"reason", "order_id", "trade_id", "deal_id", "amount"}]}`` — one result per live order or
close; an exchange failure is a ``"failed"`` result, not an error status. A role that may not
operate bots: 403, nothing done; anonymous: 401/403.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.services.bot_validation import BotPermissionDenied
from trading.services.emergency import emergency_stop


class EmergencyStopSerializer(serializers.Serializer):
    close_positions = serializers.BooleanField(required=False, default=False)


class EmergencyStopView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Emergency stop: stop all your bots, cancel live orders at the exchange",
        description="Stops every running or paused bot of yours. Live bots' open orders are cancelled at "
        "the exchange by client order id and, with close_positions, their deals closed at market. One "
        "result per live order or close; an exchange failure is a 'failed' result, not an error status.",
        tags=["trading"],
        request=EmergencyStopSerializer,
        responses=inline_serializer(
            "EmergencyStopReport",
            {
                "close_positions": serializers.BooleanField(),
                "paper_bots": serializers.ListField(child=serializers.IntegerField()),
                "live_bots": serializers.ListField(child=serializers.IntegerField()),
                "failed": serializers.IntegerField(),
                "results": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def post(self, request):
        body = EmergencyStopSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            report = emergency_stop(user=request.user, close_positions=body.validated_data["close_positions"])
        except BotPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(report.as_dict())
