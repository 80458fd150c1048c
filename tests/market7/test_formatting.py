"""The shared display formatting (market7.formatting) and its builtin template filters."""

from decimal import Decimal

import pytest
from django.template import Context, Template

from market7.formatting import format_money, format_number, format_pct, format_price, human_label, price_decimals


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        (108246.35, {"price": 0.01}, 2),
        (0.81234, None, 6),
        (108246.35, None, 2),
        (3.5, {"price": 0.0001}, 4),
        (12.0, {"price": 1}, 0),
        (None, None, 2),
        (0.00001234, None, 8),
    ],
)
def test_price_decimals(value, precision, expected):
    assert price_decimals(value, precision) == expected


def test_format_number_and_money():
    assert format_number(Decimal("1234567.891")) == "1,234,567.89"
    assert format_number(-0.001) == "0.00"
    assert format_number(None) == "—"
    assert format_number("abc") == "—"
    assert format_number(float("nan")) == "—"
    assert format_price(108246.354, {"price": 0.01}) == "108,246.35"
    assert format_money(Decimal("4.5"), "USDT") == "4.50 USDT"
    assert format_money(Decimal("12.3"), "USDT", sign=True) == "+12.30 USDT"
    assert format_money(Decimal("-12.3"), "USDT", sign=True) == "-12.30 USDT"
    assert format_money(None, "USDT") == "—"
    assert format_pct(1.234) == "1.23 %"


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("tp_type", "TP type"),
        ("btc_market_filter_enabled", "BTC market filter"),
        ("cagr_pct", "CAGR"),
        ("final_equity", "Final equity"),
        ("take_profit_pct", "Take profit"),
        ("max_safety_orders", "Max safety orders"),
    ],
)
def test_human_label(name, label):
    assert human_label(name) == label


def test_builtin_filters_need_no_load():
    out = Template(
        "{{ p|price:prec }}|{{ m|money:'USDT' }}|{{ m|signed_money:'USDT' }}|{{ t|onoff }}|{{ f|onoff }}|{{ n|label }}|{{ x|pct }}"
    ).render(
        Context(
            {
                "p": 1234.5,
                "prec": {"price": 0.1},
                "m": Decimal("1500"),
                "t": True,
                "f": False,
                "n": "sl_timeout",
                "x": 2.5,
            }
        )
    )
    assert out == "1,234.5|1,500.00 USDT|+1,500.00 USDT|on|off|SL timeout|2.50 %"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (93784, "1d 2h"),
        (8100, "2h 15m"),
        (2700, "45m"),
        (42, "42s"),
        (3600, "1h"),
        (86400, "1d"),
        (None, "—"),
        (-5, "—"),
    ],
)
def test_format_duration(seconds, expected):
    from market7.formatting import format_duration

    assert format_duration(seconds) == expected
    assert Template("{{ s|duration }}").render(Context({"s": seconds})) == expected
