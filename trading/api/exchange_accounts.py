"""REST API of exchange accounts (under /api/v1/), scoped to the requesting user. Never a secret.

- ``GET/POST /api/v1/accounts/`` — list / create (``exchange``, ``label``, ``api_key``,
  ``secret``, ``passphrase``, ``sandbox``; the credentials are write-only)
- ``GET/PATCH/DELETE /api/v1/accounts/{id}/`` — a blank or absent credential keeps the stored one
- ``POST /api/v1/accounts/{id}/test/`` — "Test connection": ``{"ok", "reason", "message",
  "permissions", "balances"}`` (balances: asset -> total as a decimal string)

A response shows ``key_hint`` (last 4 characters of the API key) and ``has_passphrase``; the
key, secret and passphrase never leave the server. Another user's account is a 404 (ownership
gate ``accounts.mixins.OwnedViewSetMixin``); a viewer's writes are 403. All writes go through
``trading.services.exchange_accounts``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.mixins import OwnedViewSetMixin
from trading.models import ExchangeAccount
from trading.services import exchange_accounts as svc

_SECRET = {"write_only": True, "required": False, "allow_blank": True, "style": {"input_type": "password"}}


class ExchangeAccountSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(**_SECRET, max_length=512)
    secret = serializers.CharField(**_SECRET, max_length=512)
    passphrase = serializers.CharField(**_SECRET, max_length=512)
    has_passphrase = serializers.BooleanField(read_only=True)

    class Meta:
        model = ExchangeAccount
        fields = [
            "id", "exchange", "label", "sandbox", "key_hint", "has_passphrase", "permissions",
            "last_check_at", "last_check_ok", "last_check_message", "created_at", "updated_at",
            "api_key", "secret", "passphrase",
        ]  # fmt: skip
        read_only_fields = ["key_hint", "permissions", "last_check_at", "last_check_ok", "last_check_message"]
        extra_kwargs = {"exchange": {"required": False}, "label": {"required": False}}

    def validate(self, attrs):
        if self.instance is not None and "exchange" in attrs and attrs["exchange"] != self.instance.exchange:
            raise ValidationError({"exchange": ["cannot change; add a new account instead"]})
        return attrs


def _call(func, **kwargs):
    try:
        return func(**kwargs)
    except ExchangeAccount.DoesNotExist:
        raise NotFound("no such exchange account") from None
    except svc.AccountValidationError as exc:
        raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
    except svc.AccountPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None


class ExchangeAccountViewSet(OwnedViewSetMixin, viewsets.ModelViewSet):
    queryset = ExchangeAccount.objects.all()
    serializer_class = ExchangeAccountSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        d = serializer.validated_data
        serializer.instance = _call(
            svc.account_create,
            user=self.request.user,
            exchange=d.get("exchange", ""),
            label=d.get("label", ""),
            api_key=d.get("api_key", ""),
            secret=d.get("secret", ""),
            passphrase=d.get("passphrase", ""),
            sandbox=d.get("sandbox", False),
        )

    def perform_update(self, serializer):
        d = serializer.validated_data
        serializer.instance = _call(
            svc.account_update,
            user=self.request.user,
            account_id=serializer.instance.pk,
            label=d.get("label"),
            api_key=d.get("api_key"),
            secret=d.get("secret"),
            passphrase=d.get("passphrase"),
            sandbox=d.get("sandbox"),
        )

    def perform_destroy(self, instance):
        _call(svc.account_delete, user=self.request.user, account_id=instance.pk)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ExchangeAccountTest",
            {
                "ok": serializers.BooleanField(),
                "reason": serializers.CharField(),
                "message": serializers.CharField(),
                "permissions": serializers.ListField(child=serializers.CharField()),
                "balances": serializers.DictField(child=serializers.CharField()),
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        account = self.get_object()
        r = _call(svc.account_test, user=request.user, account_id=account.pk)
        return Response(
            {
                "ok": r.ok,
                "reason": r.reason,
                "message": r.message,
                "permissions": r.permissions,
                "balances": {a: f"{v.normalize():f}" for a, v in r.balances.items()},
            }
        )


VIEWSETS = [("accounts", ExchangeAccountViewSet, "exchange-account")]
