"""MarketSpec.from_ccxt with partial ccxt dicts falls back to the field defaults."""

from strategies.engine.market import MarketSpec


def test_from_ccxt_missing_precision_limits_and_fees_use_field_defaults():
    spec = MarketSpec.from_ccxt({"symbol": "BTC/USDT"})
    assert (spec.amount_tick, spec.price_tick, spec.min_amount, spec.min_cost) == (1e-8, 1e-8, 0.0, 0.0)
    assert (spec.maker_fee_bps, spec.taker_fee_bps) == (10.0, 10.0)


def test_from_ccxt_reads_binance_tick_sizes_and_fee_fractions():
    spec = MarketSpec.from_ccxt(
        {
            "symbol": "ETH/USDT",
            "precision": {"amount": 0.0001, "price": 0.01},
            "limits": {"amount": {"min": 0.0001}, "cost": {"min": 5.0}},
            "maker": 0.001,
            "taker": 0.00075,
        }
    )
    assert (spec.amount_tick, spec.price_tick, spec.min_amount, spec.min_cost) == (0.0001, 0.01, 0.0001, 5.0)
    assert (spec.maker_fee_bps, spec.taker_fee_bps) == (10.0, 7.5)
