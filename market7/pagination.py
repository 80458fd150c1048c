"""The REST API's one pagination class (``REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]``):
DRF's limit/offset pagination with strict parameters.

DRF's :class:`rest_framework.pagination.LimitOffsetPagination` ignores a ``limit``/``offset``
it cannot parse (``abc``, ``-5``) and passes any integer on to the database, where a value
beyond a signed 64-bit integer (``99999999999999999999``) is a server error (SQLite: "datatype
mismatch", Postgres: ``DataError``). Here each is parsed once: an integer, ``limit`` >= 1,
``offset`` >= 0, both <= 2**63 - 1 — anything else is a 400 naming the parameter and the
reason, e.g. ``{"limit": ["A valid integer is required."]}``. An empty parameter means the
default, as in DRF; a ``limit`` above ``max_limit`` is cut to it, as in DRF.

Views with their own page size subclass :class:`LimitOffsetPagination` from here (candles:
``trading.api.markets.CandlePagination``).
"""

from __future__ import annotations

from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError

#: The largest value a SQL bigint (LIMIT/OFFSET) holds.
BIGINT_MAX = 2**63 - 1


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    def _param(self, request, name: str, *, min_value: int, default: int | None) -> int | None:
        raw = request.query_params.get(name, "")
        if raw == "":
            return default
        field = serializers.IntegerField(min_value=min_value, max_value=BIGINT_MAX)
        try:
            return field.run_validation(raw)
        except serializers.ValidationError as exc:
            raise ValidationError({name: exc.detail}) from None

    def get_limit(self, request):
        if not self.limit_query_param:
            return self.default_limit
        limit = self._param(request, self.limit_query_param, min_value=1, default=self.default_limit)
        if limit is not None and self.max_limit:
            limit = min(limit, self.max_limit)
        return limit

    def get_offset(self, request):
        return self._param(request, self.offset_query_param, min_value=0, default=0)
