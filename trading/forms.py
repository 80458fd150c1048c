"""Forms of the bot pages: the bot form generated from the strategy's parameter schema, and the
trade / decision-log filters.

The bot form has fixed fields (name, strategy, markets, timeframe, mode, capital, feed, replay
start and speed, the signal starts: signal strategies and min score) plus one field per strategy parameter, named ``p_<param>``, built from
``strategies.registry.get_strategy(name).schema()`` (each param: name, type, default, min, max,
unit, help, choices). ``clean()`` runs the strategy's own ``validate_params`` and maps its
``ParamError.errors`` ({param: message}) onto the ``p_<param>`` fields, so an invalid value is a
field error and nothing is saved. ``cleaned_params`` is the validated params dict.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from market7.formatting import human_label
from trading.forms_risk import RISK_PREFIX, RiskFieldsMixin
from trading.models.bots import Bot, BotEvent, Trade
from trading.models.market import Market, Timeframe
from trading.services.bot_validation import scan_strategy_names

PARAM_PREFIX = "p_"
DEFAULT_STRATEGY = "smart_dca"
# The new-bot form's Smart DCA guards: the default guards the demo bots run with
# (docs/bots.md, trading/management/commands/demo_setup.py); the rest keep the schema defaults.
NEW_BOT_PARAMS = {
    "smart_dca": {"step_repeat_guard_enabled": True, "spend_guard_enabled": True, "zombie_tag_enabled": True},
}


# -- the strategy registry (trading core) ------------------------------------------------------
def strategy_names() -> list[str]:
    """Names of the registered strategies (``strategies.registry.list_strategies()``)."""
    try:
        from strategies.registry import list_strategies
    except ImportError:  # the trading core not installed yet
        return []
    names = []
    for item in list_strategies():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            names.append(item.get("name"))
        else:
            names.append(getattr(item, "name", None) or getattr(item, "__name__", str(item)))
    return [n for n in names if n]


def strategy_class(name: str):
    """The strategy class, or None when ``name`` is not registered."""
    try:
        from strategies.registry import get_strategy
    except ImportError:
        return None
    try:
        return get_strategy(name)
    except Exception:  # unknown name: KeyError / ValueError, depending on the registry
        return None


def ordered_by_group(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``params`` stably sorted by their ``group``, groups in order of first appearance (a
    schema may come back to a group, e.g. Smart DCA's "deal": one fieldset each, not two)."""
    first: dict[str, int] = {}
    for p in params:
        first.setdefault(p.get("group") or "", len(first))
    return sorted(params, key=lambda p: first[p.get("group") or ""])


def strategy_schema(name: str) -> list[dict[str, Any]]:
    """The strategy's parameters as a list of dicts with at least ``name`` (empty if unknown).

    Accepts the schema as a list of params, ``{"params": [...]}`` or ``{name: spec}``.
    """
    cls = strategy_class(name)
    if cls is None:
        return []
    schema = cls.schema()
    if isinstance(schema, dict):
        if isinstance(schema.get("params"), list):
            schema = schema["params"]
        elif isinstance(schema.get("properties"), dict):
            schema = [{"name": k, **v} for k, v in schema["properties"].items()]
        else:
            schema = [{"name": k, **v} for k, v in schema.items() if isinstance(v, dict)]
    params = [dict(p) for p in schema]
    for p in params:
        # the core's default label is the name capitalised ("Tp type"); pages show the
        # field's terms ("TP type", "BTC market filter") unless the strategy set its own
        if not p.get("label") or p["label"] == str(p["name"]).replace("_", " ").capitalize():
            p["label"] = human_label(p["name"])
    return params


def param_error_map(exc: Exception) -> dict[str, str]:
    """``ParamError.errors`` ({field: message}) or ``{"__all__": str(exc)}``."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        return {str(k): str(v) for k, v in errors.items()}
    if hasattr(exc, "message_dict"):  # django ValidationError
        return {k: "; ".join(v) for k, v in exc.message_dict.items()}
    if hasattr(exc, "messages"):
        return {"__all__": "; ".join(exc.messages)}
    return {"__all__": str(exc)}


def validate_params(strategy: str, params: dict) -> dict:
    """The strategy's validated params (``Cls.validate_params``); raises its ParamError."""
    cls = strategy_class(strategy)
    if cls is None or not hasattr(cls, "validate_params"):
        return params
    result = cls.validate_params(params)
    if isinstance(result, dict):
        return result
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return params


def _param_help(param: dict) -> str:
    bits = []
    if param.get("help"):
        bits.append(str(param["help"]))
    lo, hi = param.get("min"), param.get("max")
    if hi is not None and abs(float(hi)) >= 1e9:  # "no practical upper bound": do not print 1e12
        hi = None
    if lo is not None and hi is not None:
        bits.append(
            f"range {lo:g} … {hi:g}"
            if isinstance(lo, int | float) and isinstance(hi, int | float)
            else f"range {lo} … {hi}"
        )
    elif lo is not None:
        bits.append(f"min {lo:g}" if isinstance(lo, int | float) else f"min {lo}")
    elif hi is not None:
        bits.append(f"max {hi}")
    default = param.get("default")
    if default is not None and default != "":
        bits.append(f"default {default:g}" if isinstance(default, float) else f"default {default}")
    return " · ".join(bits)


def param_field(param: dict) -> forms.Field:
    """A form field for one schema param (int, float, bool, choice, str; lists as JSON text)."""
    kind = str(param.get("type") or "float").lower()
    label = param.get("label") or str(param["name"]).replace("_", " ")
    common = {"label": label, "required": False, "help_text": _param_help(param), "initial": param.get("default")}
    attrs = {"data-unit": param.get("unit") or ""}
    choices = param.get("choices")
    if choices:
        pairs = [(c, c) if not isinstance(c, list | tuple) else (c[0], c[1]) for c in choices]
        return forms.ChoiceField(
            choices=[(str(a), str(b)) for a, b in pairs], widget=forms.Select(attrs=attrs), **common
        )
    if kind in ("bool", "boolean"):
        return forms.BooleanField(widget=forms.CheckboxInput(attrs=attrs), **common)
    if kind in ("int", "integer"):
        # Bounds are enforced by the strategy's validate_params (one source of truth, exact
        # messages); min/max here only drive the browser's spinner.
        return forms.IntegerField(
            widget=forms.NumberInput(attrs={**attrs, "min": param.get("min"), "max": param.get("max"), "step": 1}),
            **common,
        )
    if kind in ("float", "number", "decimal", "pct", "percent"):
        return forms.FloatField(
            widget=forms.NumberInput(attrs={**attrs, "min": param.get("min"), "max": param.get("max"), "step": "any"}),
            **common,
        )
    if kind in ("list", "array", "json", "dict", "object"):
        return forms.JSONField(widget=forms.TextInput(attrs=attrs), **common)
    return forms.CharField(widget=forms.TextInput(attrs=attrs), **common)


class ParamFieldsMixin:
    """Adds one ``p_<name>`` field per param of the selected strategy and validates them."""

    def _strategy_name(self) -> str:
        if self.is_bound:
            return self.data.get("strategy") or ""
        return self.initial.get("strategy") or (
            self.fields["strategy"].choices[0][0] if self.fields["strategy"].choices else ""
        )

    def add_param_fields(self, initial_params: dict | None = None) -> None:
        self.strategy_params = strategy_schema(self._strategy_name())
        for param in self.strategy_params:
            field = param_field(param)
            if initial_params and param["name"] in initial_params:
                field.initial = initial_params[param["name"]]
            self.fields[PARAM_PREFIX + param["name"]] = field

    def param_bound_fields(self):
        """Bound fields of the params, with ``unit`` attached (for the template), ordered by
        group (groups in the order they first appear, params in schema order within a group)
        so that each group is one fieldset."""
        out = []
        for param in ordered_by_group(self.strategy_params):
            bf = self[PARAM_PREFIX + param["name"]]
            bf.unit = param.get("unit") or ""
            bf.param = param
            out.append(bf)
        return out

    def collect_params(self, cleaned: dict) -> dict:
        """The ``p_*`` values the user filled in (blank = the strategy's default), by param name."""
        params = {}
        for param in self.strategy_params:
            value = cleaned.get(PARAM_PREFIX + param["name"])
            if value is None or value == "":
                continue
            params[param["name"]] = value
        return params

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Put a service's ``{field: message}`` errors on the form: ``params.x`` -> ``p_x``."""
        for key, message in errors.items():
            name = PARAM_PREFIX + key[len("params.") :] if key.startswith("params.") else key
            if key.startswith("risk."):
                name = RISK_PREFIX + key[len("risk.") :]
            if name in self.fields and name not in ("__all__",):
                if name in self.errors:
                    self.errors[name].append(message)
                else:
                    self.add_error(name, message)
            else:
                self.add_error(None, f"{key.replace('params.', '')}: {message}" if key not in ("__all__",) else message)

    def clean_params(self, cleaned: dict) -> dict | None:
        """Collect ``p_*`` values (blank = the default) and run the strategy's validation."""
        params = {}
        for param in self.strategy_params:
            value = cleaned.get(PARAM_PREFIX + param["name"])
            if value is None or value == "":
                continue
            params[param["name"]] = value
        try:
            return validate_params(cleaned.get("strategy") or "", params)
        except Exception as exc:  # the strategy's ParamError (or ValueError)
            if not hasattr(exc, "errors") and not isinstance(exc, ValueError):
                raise
            for key, message in param_error_map(exc).items():
                name = PARAM_PREFIX + key
                self.add_error(name if name in self.fields else None, message)
            return None


class BotForm(RiskFieldsMixin, ParamFieldsMixin, forms.Form):
    """Create / edit a bot. ``strategy`` decides the param fields (re-rendered by HTMX); the
    risk fieldsets (``trading.forms_risk``) give ``cleaned_risk``. A new bot defaults to
    Smart DCA with its default guards on (:data:`NEW_BOT_PARAMS`) and every risk rule on."""

    name = forms.CharField(max_length=120)
    strategy = forms.ChoiceField(choices=())
    markets = forms.ModelMultipleChoiceField(
        queryset=Market.objects.none(), help_text="Stored markets of one exchange. Ctrl/⌘-click to pick several."
    )
    timeframe = forms.ChoiceField(choices=Timeframe.choices, initial=Timeframe.H1)
    mode = forms.ChoiceField(
        choices=Bot.Mode.choices,
        initial=Bot.Mode.PAPER,
        help_text="Live trading is disabled in this deployment: bots trade on paper balances.",
    )
    capital = forms.DecimalField(
        min_value=Decimal("1"),
        max_digits=28,
        decimal_places=8,
        initial=Decimal("1000"),
        help_text="quote currency (USDT)",
    )
    feed = forms.ChoiceField(choices=Bot.FeedKind.choices, initial=Bot.FeedKind.REPLAY, widget=forms.RadioSelect)
    replay_start = forms.DateTimeField(
        required=False,
        help_text="UTC; replay feeds only",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
    )
    replay_speed = forms.FloatField(
        required=False,
        min_value=1,
        initial=3600.0,
        help_text="market seconds per wall second (3600 = 1 h of market per second)",
    )
    # USDT-M perpetual bots only (markets named like BTC/USDT:USDT); a spot bot leaves them
    # at their defaults. Checked by trading.services.bot_perpetuals (docs/perps.md).
    leverage = forms.IntegerField(
        required=False, min_value=1, max_value=125, help_text="perpetuals: 1–125×, capped by the market's first tier"
    )
    margin_mode = forms.ChoiceField(
        required=False,
        choices=[("isolated", "isolated"), ("cross", "cross")],
        initial="isolated",
        help_text="perpetuals only",
    )
    liquidation_buffer_pct = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=6,
        decimal_places=3,
        initial=Decimal("0"),
        help_text="perpetuals: no entry or safety order closer than this % to liquidation (0 = off)",
    )

    signal_strategies = forms.MultipleChoiceField(
        required=False,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        label="Start deals on signals of",
        help_text="A scheduled scan's passing signal of these strategies on the bot's markets and timeframe "
        "starts a deal while the bot runs (your watchlist is what the scan covers). None: off.",
    )
    signal_min_score = forms.FloatField(
        required=False,
        initial=0.0,
        widget=forms.NumberInput(attrs={"min": 0, "max": 1, "step": "0.01"}),
        label="Signal min score",
        help_text="lowest signal score (0..1) that starts a deal; 0 = every passing signal",
    )

    def __init__(self, *args, initial_params: dict | None = None, initial_risk: dict | None = None, **kwargs):
        new = kwargs.pop("new", initial_params is None)
        super().__init__(*args, **kwargs)
        names = strategy_names()
        if not self.initial.get("strategy") and DEFAULT_STRATEGY in names:
            self.initial["strategy"] = DEFAULT_STRATEGY
        if initial_params is None:
            initial_params = NEW_BOT_PARAMS.get(self.initial.get("strategy") or "")
        self.fields["strategy"].choices = [(n, n.replace("_", " ")) for n in names]
        self.fields["signal_strategies"].choices = [(n, n.replace("_", " ")) for n in scan_strategy_names()]
        self.fields["markets"].queryset = (
            Market.objects.filter(active=True).select_related("exchange").order_by("exchange__code", "symbol")
        )
        self.fields["markets"].label_from_instance = lambda m: f"{m.symbol} · {m.exchange.code}"
        # Live is visible but not selectable (a note explains why).
        self.fields["mode"].widget.attrs["data-disabled-options"] = "live"
        self.add_param_fields(initial_params)
        self.cleaned_params: dict | None = None
        self.add_risk_fields(initial_risk, new=new)
        self.locked_note = ""
        self.risk_locked_why = ""

    CREATED_ONLY = (
        "strategy", "markets", "timeframe", "mode", "capital", "feed", "replay_start", "replay_speed",
        "leverage", "margin_mode", "liquidation_buffer_pct",
    )  # fmt: skip
    WHY_FIXED = (
        "Fixed after the first start: the bot's engine state (cash, positions, orders) was built with it. "
        "Clone the bot to trade with a different value."
    )
    WHY_RUNNING = "Pause or stop the bot to change its parameters and portfolio risk."

    def lock_for(self, bot: Bot) -> None:
        """Disable (read-only, with the reason as help) the fields ``bot``'s status does not
        let change, so the page never offers a change that would not be saved."""
        self.locked_note = ""
        if bot.status == Bot.Status.CREATED:
            return
        for name in self.CREATED_ONLY:
            self.fields[name].disabled = True
            self.fields[name].help_text = self.WHY_FIXED
        self.locked_note = "Greyed fields are read-only: " + self.WHY_FIXED
        if bot.status == Bot.Status.RUNNING:
            for name, field in self.fields.items():
                if name.startswith((PARAM_PREFIX, RISK_PREFIX)) or name == "risk_enabled":
                    field.disabled = True
            self.risk_locked_why = self.WHY_RUNNING
            self.locked_note += " " + self.WHY_RUNNING

    def clean_mode(self):
        mode = self.cleaned_data["mode"]
        if mode != Bot.Mode.PAPER:
            raise forms.ValidationError("Live trading is disabled; choose paper.")
        return mode

    def clean_markets(self):
        markets = list(self.cleaned_data["markets"])
        if len({m.exchange_id for m in markets}) > 1:
            raise forms.ValidationError("All markets of a bot must be on one exchange.")
        return markets

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("feed") == Bot.FeedKind.REPLAY and not cleaned.get("replay_start"):
            self.add_error("replay_start", "A replay feed needs a start time.")
        if cleaned.get("replay_speed") in (None, ""):
            cleaned["replay_speed"] = 3600.0
        self.cleaned_params = self.collect_params(cleaned)
        self.cleaned_risk = self.clean_risk(cleaned)
        return cleaned


class TradeFilterForm(forms.Form):
    """Query-string filters of the trades page and its CSV export."""

    bot = forms.IntegerField(required=False)
    market = forms.CharField(required=False, max_length=64)
    side = forms.ChoiceField(required=False, choices=[("", "any side")] + list(Trade.Side.choices))
    status = forms.ChoiceField(required=False, choices=[("", "any status")] + list(Trade.Status.choices))
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1)


class EventFilterForm(forms.Form):
    """Filters of a bot's decision log."""

    kind = forms.ChoiceField(required=False, choices=[("", "any kind")] + list(BotEvent.Kind.choices))
    rule = forms.CharField(required=False, max_length=64)
    outcome = forms.CharField(required=False, max_length=16)
