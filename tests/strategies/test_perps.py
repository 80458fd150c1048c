"""Perpetual-futures formulas (strategies.engine.perps): hand-worked to the cent.

Source of the formulas: Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
Contracts". Each expected value is worked by hand in the comment next to it.
"""

import pytest

from strategies.engine.perps import (
    Leg,
    TierTable,
    bundled_tiers,
    funding_payment,
    initial_margin,
    liquidation_price,
    maintenance_amounts,
    maintenance_margin,
    tiers_from_ccxt,
    validate_leverage,
)

BTC = bundled_tiers("BTC/USDT:USDT")
ETH = bundled_tiers("ETH/USDT:USDT")


def test_faq_maintenance_amount_example():
    # The FAQ's table: level 1 0-50,000 at 0.4 %, level 2 50,000-250,000 at 0.5 %, level 3
    # 250,000-1,000,000 at 1 %. "Maintenance Amount on Level 3 = 250,000 * (1% - 0.5%) + 50 USDT
    # = 1,300 USDT".
    assert maintenance_amounts([(0, 0.004), (50_000, 0.005), (250_000, 0.01)]) == [0.0, 50.0, 1300.0]
    faq = TierTable.from_rows(
        [[0, 50_000, 0.004, 125, 0], [50_000, 250_000, 0.005, 100, 50], [250_000, 1e6, 0.01, 50, 1300]]
    )
    # "if the position size ... is 264,000 USDT, then the maintenance margin rate would be 1 %"
    assert faq.tier_for(264_000).mmr == 0.01
    # "if the position size ... is 500,000 USDT, then the maintenance amount would be 1,300 USDT"
    assert faq.tier_for(500_000).cum == 1300.0


def test_bundled_tables_follow_the_recurrence_and_caps():
    assert [t.cum for t in BTC.tiers][:4] == [0.0, 50.0, 950.0, 11450.0]
    assert BTC.max_leverage(0) == 125.0
    assert BTC.max_leverage(1_000_000) == 75.0
    assert bundled_tiers("PEPE/USDT:USDT") is None
    with pytest.raises(ValueError, match="cum 60 != floor"):
        TierTable.from_rows([[0, 50_000, 0.004, 125, 0], [50_000, 600_000, 0.005, 100, 60]])


def test_tiers_from_ccxt_computes_cum_when_missing():
    rows = [
        {"minNotional": 0, "maxNotional": 50_000, "maintenanceMarginRate": 0.004, "maxLeverage": 125, "info": {}},
        {"minNotional": 50_000, "maxNotional": 600_000, "maintenanceMarginRate": 0.005, "maxLeverage": 100, "info": {}},
    ]
    assert tiers_from_ccxt(rows).to_rows() == (
        (0.0, 50000.0, 0.004, 125.0, 0.0),
        (50000.0, 600000.0, 0.005, 100.0, 50.0),
    )


def test_leverage_limits():
    validate_leverage(125, BTC, 10_000)
    with pytest.raises(ValueError, match="out of range 1..125"):
        validate_leverage(126)
    with pytest.raises(ValueError, match="out of range"):
        validate_leverage(0.5)
    with pytest.raises(ValueError, match=r"leverage 100 > 75, the maximum for a notional of 1,000,000.00"):
        validate_leverage(100, BTC, 1_000_000)


def test_margins():
    assert initial_margin(60_000.0, 10) == 6000.0
    # 31,000 ETH notional: tier 1, 31,000 x 0.4 % - 0 = 124
    assert maintenance_margin(31_000.0, ETH) == 124.0
    # 1,200,000 BTC notional: tier 3, 1,200,000 x 0.65 % - 950 = 6,850
    assert maintenance_margin(1_200_000.0, BTC) == pytest.approx(6850.0, abs=1e-9)


def test_isolated_long_and_short_one_way():
    # 1 BTC at 60,000, 10x isolated: WB = 6,000; notional 60,000 -> tier 2 (0.5 %, cum 50).
    # long:  (6,000 + 50 - 60,000) / (0.005 - 1) = -53,950 / -0.995 = 54,221.11
    lp = liquidation_price(wallet_balance=6000, legs=[Leg(1, 1, 60_000)], tiers=BTC)
    assert round(lp, 2) == 54221.11
    # short: (6,000 + 50 + 60,000) / (0.005 + 1) = 66,050 / 1.005 = 65,721.39
    lp = liquidation_price(wallet_balance=6000, legs=[Leg(-1, 1, 60_000)], tiers=BTC)
    assert round(lp, 2) == 65721.39


def test_isolated_long_recomputed_in_the_tier_at_the_liquidation_price():
    # 0.72 BTC at 70,000 (notional 50,400: tier 2), 10x: WB 5,040.
    # tier 2: (5,040 + 50 - 50,400) / (0.72 x 0.005 - 0.72) = 63,247.49 -> notional 45,538 < 50,000
    # so tier 1 (FAQ note): (5,040 + 0 - 50,400) / (0.72 x 0.004 - 0.72) = -45,360 / -0.71712 = 63,253.01
    lp = liquidation_price(wallet_balance=5040, legs=[Leg(1, 0.72, 70_000)], tiers=BTC)
    assert round(lp, 2) == 63253.01


def test_isolated_short_in_tier_3():
    # 20 BTC short at 60,000 (1,200,000: tier 3, 0.65 %, cum 950), 20x: WB 60,000.
    # (60,000 + 950 + 1,200,000) / (20 x 0.0065 + 20) = 1,260,950 / 20.13 = 62,640.34
    lp = liquidation_price(wallet_balance=60_000, legs=[Leg(-1, 20, 60_000)], tiers=BTC)
    assert round(lp, 2) == 62640.34


def test_cross_with_another_contract():
    # Cross wallet 10,000; BTC long 1 at 60,000; an ETH short 10 at 3,000 marked at 3,100:
    # UPNL1 = -1,000, TMM1 = 31,000 x 0.4 % = 124.
    # tier 1: (10,000 - 124 - 1,000 - 60,000) / (0.004 - 1) = 51,329.32 -> notional >= 50,000: tier 2
    # tier 2: (10,000 - 124 - 1,000 + 50 - 60,000) / (0.005 - 1) = -51,074 / -0.995 = 51,330.65
    tmm = maintenance_margin(31_000.0, ETH)
    lp = liquidation_price(
        wallet_balance=10_000, legs=[Leg(1, 1, 60_000)], tiers=BTC, other_maintenance=tmm, other_upnl=-1000
    )
    assert round(lp, 2) == 51330.65


def test_cross_hedge_mode_long_and_short_share_one_price():
    # Hedge mode, cross wallet 5,000: LONG 1 at 60,000 and SHORT 0.5 at 62,000.
    # At entry notionals: LONG tier 2 (cum 50), SHORT 31,000 tier 1:
    #   (5,000 + 50 + 0 - 60,000 + 31,000) / (0.005 + 0.5 x 0.004 - 1 + 0.5) = 48,580.12
    # at that price the LONG notional is 48,580 -> tier 1 (cum 0, 0.4 %):
    #   (5,000 - 60,000 + 31,000) / (0.004 + 0.002 - 0.5) = -24,000 / -0.494 = 48,583.00
    legs = [Leg(1, 1, 60_000, hedge=True), Leg(-1, 0.5, 62_000, hedge=True)]
    assert round(liquidation_price(wallet_balance=5000, legs=legs, tiers=BTC), 2) == 48583.00


def test_no_liquidation_price():
    # 1x long with the whole notional as margin: (60,000 + 50 - 60,000) / (0.005 - 1) < 0 -> 0.0
    assert liquidation_price(wallet_balance=60_050, legs=[Leg(1, 1, 60_000)], tiers=BTC) == 0.0
    assert liquidation_price(wallet_balance=100, legs=[], tiers=BTC) is None


def test_funding_payment_signs():
    # 0.5 BTC long, mark 60,000, rate +0.01 %: pays 3.00; the short receives 3.00.
    assert funding_payment(amount=0.5, mark_price=60_000, rate=0.0001) == pytest.approx(3.0, abs=1e-12)
    assert funding_payment(amount=-0.5, mark_price=60_000, rate=0.0001) == pytest.approx(-3.0, abs=1e-12)
    # negative rate: the long receives
    assert funding_payment(amount=0.5, mark_price=60_000, rate=-0.0002) == pytest.approx(-6.0, abs=1e-12)
