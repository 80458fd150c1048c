"""The per-user watchlist: the markets a user's scheduled scans cover.

One :class:`WatchlistEntry` per ``(owner, market)``. ``owner`` is the user (named ``owner`` so
the entry goes through the one ownership gate, ``WatchlistEntry.objects.for_user(user)``).
``enabled``: scanned by the scheduled scan (``strategies.tasks.scan_watchlists``); a disabled
entry keeps its multiplier. ``risk_multiplier``: a unitless factor 0–10 (default 1) a user gives
a market's position sizes. ``last_scanned_at`` / ``last_error``: the outcome of the market's
newest scheduled scan (UTC; error is one line, empty when it was scanned).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import OwnedModel
from trading.models.market import Market

MULTIPLIER_MIN = Decimal("0")
MULTIPLIER_MAX = Decimal("10")


class WatchlistEntry(OwnedModel):
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)
    risk_multiplier = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(MULTIPLIER_MIN), MaxValueValidator(MULTIPLIER_MAX)],
        help_text="unitless factor 0–10 on the market's position sizes",
    )
    added_at = models.DateTimeField(auto_now_add=True)
    last_scanned_at = models.DateTimeField(null=True, blank=True, help_text="newest scheduled scan, UTC")
    last_error = models.CharField(max_length=255, blank=True, help_text="why the newest scheduled scan skipped it")

    class Meta:
        ordering = ["owner", "market__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "market"], name="watchlist_unique_market"),
            models.CheckConstraint(
                condition=models.Q(risk_multiplier__gte=0, risk_multiplier__lte=10), name="watchlist_multiplier_range"
            ),
        ]
        indexes = [models.Index(fields=["owner", "enabled"], name="watchlist_owner_enabled")]

    def __str__(self) -> str:
        return f"{self.market.symbol} ({'on' if self.enabled else 'off'}, x{self.risk_multiplier})"
