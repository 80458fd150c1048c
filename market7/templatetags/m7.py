"""Builtin template filters (no ``{% load %}`` needed; see ``TEMPLATES`` in settings):

- ``{{ value|price:market.precision }}`` — price at the market's tick, thousands separators;
- ``{{ value|money:bot.quote }}`` / ``{{ value|signed_money:bot.quote }}`` — ``1,234.56 USDT``;
- ``{{ value|num:4 }}`` — thousands separators, fixed decimals;
- ``{{ value|pct }}`` / ``{{ value|signed_pct }}`` — a percent number -> ``5.00 %``;
- ``{{ seconds|duration }}`` — ``8100`` -> ``2h 15m``;
- ``{{ value|onoff }}`` — booleans as ``on`` / ``off`` (anything else unchanged);
- ``{{ name|label }}`` — ``tp_type`` -> ``TP type`` (:func:`market7.formatting.human_label`).
"""

from __future__ import annotations

from django import template

from market7 import formatting

register = template.Library()


@register.filter
def price(value, precision=None):
    return formatting.format_price(value, precision)


@register.filter
def money(value, currency=""):
    return formatting.format_money(value, currency or "")


@register.filter
def signed_money(value, currency=""):
    return formatting.format_money(value, currency or "", sign=True)


@register.filter
def num(value, decimals=2):
    return formatting.format_number(value, int(decimals))


@register.filter
def pct(value, decimals=2):
    return formatting.format_pct(value, int(decimals))


@register.filter
def signed_pct(value, decimals=2):
    return formatting.format_pct(value, int(decimals), sign=True)


@register.filter
def duration(value):
    return formatting.format_duration(value)


@register.filter
def onoff(value):
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


@register.filter
def label(value):
    return formatting.human_label(value)
