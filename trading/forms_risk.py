"""The portfolio-risk part of the bot form: one fieldset per rule of ``strategies.risk``.

Fields are named ``r_<RiskConfig field>``; an optional rule (one that is off with ``None``)
has a ``r_<rule>_on`` checkbox. The values are validated by the schema the backtest uses
(``strategies.risk.risk_config_validate``) and errors land on the ``r_`` field they name.
Settings the form does not show (Kelly sizing, volatility targeting, regime thresholds, ...)
are kept from the bot's current block, so editing in the browser never drops what the API set.

New-bot defaults (:data:`NEW_BOT_RISK`): the ``RiskConfig`` defaults (strategy sizing,
correlation shrink, regime circuit breaker) plus a 5 % daily loss limit, a drawdown throttle
(half size from 10 %) and a drawdown pause at 20 % — every rule visible and on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from market7.formatting import human_label

RISK_PREFIX = "r_"

NEW_BOT_RISK: dict[str, Any] = {
    "daily_loss_limit_pct": 5.0,
    "drawdown_reduce_pct": 10.0,
    "drawdown_size_mult": 0.5,
    "drawdown_pause_pct": 20.0,
}

# Values an optional rule gets when its checkbox is ticked with the value left blank.
_SWITCH_ON_DEFAULTS = {
    "max_positions": 3,
    "max_capital_at_risk_pct": 10.0,
    "daily_loss_limit_pct": 5.0,
    "drawdown_reduce_pct": 10.0,
    "drawdown_pause_pct": 20.0,
}


@dataclass(frozen=True)
class RiskField:
    name: str  # the RiskConfig field
    kind: str  # float | int | bool | str | choice
    unit: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    optional: bool = False  # blank = off (None), independent of the rule switch


@dataclass(frozen=True)
class RiskRule:
    rule: str  # the decision's rule name
    title: str
    help: str
    fields: tuple[RiskField, ...]
    switch: str = ""  # the RiskConfig field that is None when the rule is off


RISK_RULES: tuple[RiskRule, ...] = (
    RiskRule(
        "position_sizing",
        "Position sizing",
        "How big a new deal's first order is. 'strategy' keeps the strategy's base order.",
        (
            RiskField("sizing_mode", "choice", choices=("strategy", "fixed", "equity_pct", "risk_per_trade", "kelly")),
            RiskField("fixed_quote", "float", "quote", "size in 'fixed' mode"),
            RiskField("equity_pct", "float", "% of equity", "size in 'equity_pct' mode"),
            RiskField("risk_per_trade_pct", "float", "% of equity", "loss at the stop in 'risk_per_trade' mode"),
            RiskField("min_quote", "float", "quote", "smaller entries are refused (the market minimum always is)"),
        ),
    ),
    RiskRule(
        "max_positions",
        "Max positions",
        "New deals are refused while this many are open.",
        (RiskField("max_positions", "int", "positions"),),
        switch="max_positions",
    ),
    RiskRule(
        "capital_at_risk",
        "Capital at risk",
        "Sum of the losses at the stops (the whole position without a stop) at most this share of equity.",
        (RiskField("max_capital_at_risk_pct", "float", "% of equity"),),
        switch="max_capital_at_risk_pct",
    ),
    RiskRule(
        "daily_loss_limit",
        "Daily loss limit",
        "No new deals for the rest of the UTC day once the day's loss reaches this.",
        (RiskField("daily_loss_limit_pct", "float", "% of day start equity"),),
        switch="daily_loss_limit_pct",
    ),
    RiskRule(
        "drawdown_size",
        "Drawdown throttle",
        "Smaller new deals while equity is this far below its peak.",
        (
            RiskField("drawdown_reduce_pct", "float", "% below peak"),
            RiskField("drawdown_size_mult", "float", "×"),
        ),
        switch="drawdown_reduce_pct",
    ),
    RiskRule(
        "drawdown_pause",
        "Drawdown pause",
        "No new deals once equity is this far below its peak, until you resume trading "
        "(or the drawdown falls below the auto-resume level).",
        (
            RiskField("drawdown_pause_pct", "float", "% below peak"),
            RiskField(
                "drawdown_auto_resume_pct", "float", "% below peak", "blank = resume by hand only", optional=True
            ),
        ),
        switch="drawdown_pause_pct",
    ),
    RiskRule(
        "correlation_limit",
        "Correlation",
        "Shrink or block a new deal moving with an open one.",
        (
            RiskField("correlation_action", "choice", choices=("off", "shrink", "block")),
            RiskField("correlation_max", "float", "", "correlation above this acts (-1 … 1)"),
            RiskField("correlation_window", "int", "candles"),
            RiskField("correlation_shrink_mult", "float", "×"),
        ),
    ),
    RiskRule(
        "circuit_breaker",
        "Regime circuit breaker",
        "Block new longs in a market-wide panic, shrink them in caution (market regime from BTC and the universe).",
        (
            RiskField("regime_enabled", "bool"),
            RiskField("regime_symbol", "str", "", "the market the regime reads first"),
        ),
    ),
)


def _risk_field(f: RiskField, initial: Any) -> forms.Field:
    common = {"label": human_label(f.name), "required": False, "help_text": f.help, "initial": initial}
    attrs = {"data-unit": f.unit}
    if f.kind == "choice":
        return forms.ChoiceField(choices=[(c, human_label(c)) for c in f.choices], widget=forms.Select(attrs), **common)
    if f.kind == "bool":
        return forms.BooleanField(widget=forms.CheckboxInput(attrs), **common)
    if f.kind == "int":
        return forms.IntegerField(widget=forms.NumberInput({**attrs, "step": 1}), **common)
    if f.kind == "float":
        return forms.FloatField(widget=forms.NumberInput({**attrs, "step": "any"}), **common)
    return forms.CharField(widget=forms.TextInput(attrs), **common)


class RiskFieldsMixin:
    """Adds ``risk_enabled``, the ``r_*`` fields and ``cleaned_risk`` to a form."""

    def add_risk_fields(self, initial_risk: dict | None, *, new: bool) -> None:
        from strategies.risk import risk_config_defaults

        defaults = risk_config_defaults()
        self.base_risk = dict(defaults | (initial_risk or (NEW_BOT_RISK if new else {})))
        self.fields["risk_enabled"] = forms.BooleanField(
            required=False,
            initial=bool(initial_risk) or new,
            label="Portfolio risk",
            help_text="Apply the rules below to every new deal of this bot (the same rules as a backtest's risk block).",
        )
        for rule in RISK_RULES:
            if rule.switch:
                self.fields[f"{RISK_PREFIX}{rule.rule}_on"] = forms.BooleanField(
                    required=False, initial=self.base_risk.get(rule.switch) is not None, label=rule.title
                )
            for f in rule.fields:
                value = self.base_risk.get(f.name)
                if value is None and rule.switch == f.name:
                    value = _SWITCH_ON_DEFAULTS.get(f.name)
                self.fields[RISK_PREFIX + f.name] = _risk_field(f, value)
        self.cleaned_risk: dict | None = None

    def risk_fieldsets(self) -> list[dict]:
        """For the template: ``[{rule, title, help, switch (bound field or None), fields}]``
        with ``unit`` attached to each bound field."""
        out = []
        for rule in RISK_RULES:
            fields = []
            for f in rule.fields:
                bf = self[RISK_PREFIX + f.name]
                bf.unit = f.unit
                fields.append(bf)
            switch = self[f"{RISK_PREFIX}{rule.rule}_on"] if rule.switch else None
            out.append({"rule": rule.rule, "title": rule.title, "help": rule.help, "switch": switch, "fields": fields})
        return out

    def clean_risk(self, cleaned: dict) -> dict | None:
        """The risk block from the ``r_*`` values (``None`` when portfolio risk is off),
        validated by ``strategies.risk.risk_config_validate``; errors go on the fields."""
        from strategies.risk import risk_config_validate

        if not cleaned.get("risk_enabled"):
            return None
        block = dict(self.base_risk)
        for rule in RISK_RULES:
            on = cleaned.get(f"{RISK_PREFIX}{rule.rule}_on", True) if rule.switch else True
            for f in rule.fields:
                value = cleaned.get(RISK_PREFIX + f.name)
                if f.kind == "bool":
                    block[f.name] = bool(value)
                elif f.name == rule.switch and not on:
                    block[f.name] = None
                elif value in (None, ""):
                    if f.optional:
                        block[f.name] = None
                    elif f.name == rule.switch:
                        block[f.name] = _SWITCH_ON_DEFAULTS.get(f.name)
                    # otherwise the current value stays
                else:
                    block[f.name] = value
        try:
            return risk_config_validate(block)
        except ValueError as exc:
            name, sep, message = str(exc).partition(": ")
            field = RISK_PREFIX + name
            self.add_error(field if sep and field in self.fields else None, message if sep else str(exc))
            return None
