"""The "Train a model" form of the ML Monitor, and the mapping of a one-line
:class:`mlops.services.training.TrainingError` to the input it is about (shared with the API).

Dates are whole UTC days: ``start`` is the open time of its first candle (00:00), ``end``
the last hour of its day (23:00), as the training window is given in candle open times.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from django import forms

from mlops.models import ModelKind
from mlops.services.training import DETECTOR_STRATEGIES

__all__ = ["STRATEGY_CHOICES", "TrainForm", "day_end", "day_start", "training_error_field"]

STRATEGY_CHOICES = [("smart_dca", "smart dca"), *((s, s.replace("_", " ")) for s in DETECTOR_STRATEGIES)]

# (words in the service's message, the input it names); first match wins
_ERROR_FIELDS = (
    ("strategy must", "strategy"),
    ("model kind", "kind"),
    ("folds", "folds"),
    ("symbol", "symbols"),
    ("market", "symbols"),
    ("timeframe", "timeframe"),
    ("window", "end"),
    ("start", "start"),
    ("end ", "end"),
)


def training_error_field(message: str) -> str | None:
    """The input a ``TrainingError`` message is about (``kind``, ``strategy``, ``symbols``,
    ``timeframe``, ``start``, ``end``, ``folds``), or None for a message about the whole request."""
    text = message.lower()
    if text.startswith("unknown model kind"):
        return "kind"
    for words, field in _ERROR_FIELDS:
        if words in text:
            return field
    return None


def day_start(day) -> datetime:
    """00:00 UTC of ``day`` (a date)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_end(day) -> datetime:
    """23:00 UTC of ``day``: the open time of its last hourly candle."""
    return datetime.combine(day, time(23, 0), tzinfo=UTC)


class TrainForm(forms.Form):
    kind = forms.ChoiceField(choices=ModelKind.choices, label="Model")
    strategy = forms.ChoiceField(choices=STRATEGY_CHOICES)
    symbols = forms.CharField(
        max_length=2000,
        help_text="ccxt symbols with stored candles, comma-separated, e.g. BTC/USDT, ETH/USDT",
        widget=forms.TextInput(attrs={"placeholder": "BTC/USDT, ETH/USDT"}),
    )
    timeframe = forms.ChoiceField(choices=[(t, t) for t in ("5m", "15m", "1h", "4h", "1d")], initial="1h")
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="first day, UTC")
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="last day, UTC (inclusive)")
    folds = forms.IntegerField(
        min_value=2, max_value=10, initial=4, help_text="purged walk-forward folds (2–10)", label="Folds"
    )

    def clean_symbols(self) -> list[str]:
        symbols = [s.strip() for s in self.cleaned_data["symbols"].split(",") if s.strip()]
        if not symbols:
            raise forms.ValidationError("give at least one symbol")
        return symbols

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "must be on or after the start")
        return cleaned

    def service_inputs(self) -> dict:
        """Keyword arguments of ``training_job_create`` (without ``user`` and ``source``)."""
        d = self.cleaned_data
        return {
            "kind": d["kind"],
            "strategy": d["strategy"],
            "symbols": d["symbols"],
            "timeframe": d["timeframe"],
            "start": day_start(d["start"]),
            "end": day_end(d["end"]),
            "options": {"folds": d["folds"]},
        }

    def add_service_error(self, message: str) -> None:
        field = training_error_field(message)
        self.add_error(field if field in self.fields else None, message)
