"""The backtest form: strategy, symbols (stored markets), timeframe, dates, capital, fees, and
the strategy's parameters — as fields generated from its schema (``p_<param>``, like the bot
form) and/or a params JSON object that overrides them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from decimal import Decimal

from django import forms

from trading.forms import PARAM_PREFIX, ParamFieldsMixin, param_error_map, strategy_names, validate_params
from trading.models import Market, Timeframe


class BacktestForm(ParamFieldsMixin, forms.Form):
    name = forms.CharField(max_length=120, required=False, help_text="optional label for the run")
    strategy = forms.ChoiceField(choices=())
    symbols = forms.MultipleChoiceField(choices=(), help_text="stored markets; Ctrl/⌘-click for several")
    timeframe = forms.ChoiceField(choices=Timeframe.choices, initial=Timeframe.H1)
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="first day, UTC (inclusive)")
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="last day, UTC (inclusive)")
    capital = forms.DecimalField(
        min_value=Decimal("1"), max_digits=28, decimal_places=8, initial=Decimal("10000"), help_text="quote currency"
    )
    fee_bps = forms.DecimalField(
        min_value=Decimal("0"),
        max_value=Decimal("1000"),
        decimal_places=3,
        initial=Decimal("10"),
        label="Fee",
        help_text="basis points per fill (10 = 0.1 %)",
    )
    slippage_bps = forms.DecimalField(
        min_value=Decimal("0"),
        max_value=Decimal("1000"),
        decimal_places=3,
        initial=Decimal("5"),
        label="Slippage",
        help_text="basis points per fill",
    )
    params_json = forms.CharField(
        required=False,
        label="Params JSON",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": '{"take_profit": 1.5}'}),
        help_text="optional JSON object; its keys override the fields above",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["strategy"].choices = [(n, n.replace("_", " ")) for n in strategy_names()]
        symbols = sorted(set(Market.objects.filter(active=True).values_list("symbol", flat=True)))
        self.fields["symbols"].choices = [(s, s) for s in symbols]
        self.add_param_fields()
        self.cleaned_params: dict = {}

    def clean_params_json(self):
        raw = (self.cleaned_data.get("params_json") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('must be a JSON object, e.g. {"take_profit": 1.5}')
        return value

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "must be on or after the start")
        if start:
            cleaned["start_dt"] = datetime.combine(start, time.min, tzinfo=UTC)
        if end:
            cleaned["end_dt"] = datetime.combine(end, time(23, 59), tzinfo=UTC)
        from_json = cleaned.get("params_json") or {}
        self.cleaned_params = self.collect_params(cleaned) | from_json
        if cleaned.get("strategy"):
            # Field errors for bad parameters (the service would report them in one line).
            to_check = {k: v for k, v in self.cleaned_params.items() if k != "risk"}
            try:
                validate_params(cleaned["strategy"], to_check)
            except ValueError as exc:  # strategies.base.ParamError
                for key, message in param_error_map(exc).items():
                    name = PARAM_PREFIX + key
                    if key in from_json or name not in self.fields:
                        self.add_error(
                            "params_json" if key in from_json or key != "__all__" else None, f"{key}: {message}"
                        )
                    else:
                        self.add_error(name, message)
        return cleaned
