"""Bybit v5 field layouts of the venue's state (orders, position, wallet, ticker): one
place builds each row, so REST answers and WebSocket pushes can never disagree.

Bybit's own inconsistencies are kept on purpose, because clients are written against
them: the position's price is ``avgPrice`` over REST and ``entryPrice`` over the private
WebSocket, ``side`` is ``""`` when flat and ``size`` is always positive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from at_core.exchange.instrument import fmt_amount

if TYPE_CHECKING:
    from at_core.exchange.venue import Order, Venue


def order_view(v: Venue, o: Order) -> dict[str, Any]:
    inst = v.inst
    avg = o.cum_value / (o.cum_qty * float(inst.qty_step)) if o.cum_qty else 0.0
    leaves_value = o.leaves * float(inst.qty_step) * (o.price * float(inst.tick_size))
    return {
        "category": "linear",
        "symbol": inst.symbol,
        "orderId": o.order_id,
        "orderLinkId": o.link_id,
        "blockTradeId": "",
        "side": "Buy" if o.side > 0 else "Sell",
        "positionIdx": 0,
        "orderStatus": o.status,
        "cancelType": o.cancel_type,
        "rejectReason": o.reject_reason,
        "avgPrice": fmt_amount(avg, 2) if o.cum_qty else "",
        "leavesQty": inst.qty_str(o.leaves),
        "leavesValue": fmt_amount(leaves_value),
        "cumExecQty": inst.qty_str(o.cum_qty),
        "cumExecValue": fmt_amount(o.cum_value),
        "cumExecFee": fmt_amount(o.cum_fee),
        "timeInForce": o.tif,
        "orderType": o.order_type,
        "stopOrderType": o.stop_order_type,
        "orderIv": "",
        "triggerPrice": inst.price_str(o.trigger_price) if o.trigger_price else "",
        "triggerDirection": o.trigger_direction,
        "triggerBy": "LastPrice" if o.trigger_price else "",
        "takeProfit": "",
        "stopLoss": "",
        "tpslMode": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "price": inst.price_str(o.price) if o.price else "0",
        "qty": inst.qty_str(o.qty),
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": o.stop_order_type == "StopLoss",
        "lastPriceOnCreated": inst.price_str(o.last_price_on_created),
        "isLeverage": "",
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(o.created),
        "updatedTime": str(o.updated),
    }


def position_view(v: Venue, ws: bool = False) -> dict[str, Any]:
    inst = v.inst
    p = v.pos
    size = abs(p.size)
    side = "" if p.size == 0 else ("Buy" if p.size > 0 else "Sell")
    value = size * float(inst.qty_step) * p.avg
    row: dict[str, Any] = {
        "category": "linear",
        "symbol": inst.symbol,
        "positionIdx": 0,
        "tradeMode": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "side": side,
        "size": inst.qty_str(size),
        "positionValue": fmt_amount(value),
        "leverage": str(v.leverage),
        "markPrice": fmt_amount(v.mark, 2),
        "liqPrice": "",
        "bustPrice": "",
        "positionIM": fmt_amount(v.position_im()),
        "positionMM": fmt_amount(v.position_im() * 0.05),
        "positionBalance": fmt_amount(v.position_im()),
        "takeProfit": "0.00",
        "stopLoss": inst.price_str(p.stop_loss) if p.stop_loss else "0.00",
        "trailingStop": "0.00",
        "tpslMode": "Full",
        "unrealisedPnl": fmt_amount(v.unrealised()),
        "curRealisedPnl": fmt_amount(p.cur_realised),
        "cumRealisedPnl": fmt_amount(p.cum_realised),
        "autoAddMargin": 0,
        "positionStatus": "Normal",
        "adlRankIndicator": 2 if size else 0,
        "isReduceOnly": False,
        "createdTime": str(p.created),
        "updatedTime": str(p.updated),
        "seq": p.seq,
    }
    row["entryPrice" if ws else "avgPrice"] = fmt_amount(p.avg, 2) if size else "0"
    return row


def wallet_view(v: Venue) -> dict[str, Any]:
    upl = v.unrealised()
    equity = v.balance + upl
    pim, oim = v.position_im(), v.order_im()
    mm = pim * 0.05
    coin = {
        "coin": "USDT",
        "equity": fmt_amount(equity),
        "usdValue": fmt_amount(equity),
        "walletBalance": fmt_amount(v.balance),
        "availableToWithdraw": fmt_amount(max(0.0, v.available())),
        "borrowAmount": "0",
        "accruedInterest": "0",
        "totalOrderIM": fmt_amount(oim),
        "totalPositionIM": fmt_amount(pim),
        "totalPositionMM": fmt_amount(mm),
        "unrealisedPnl": fmt_amount(upl),
        "cumRealisedPnl": fmt_amount(v.pos.cum_realised),
        "bonus": "0",
        "marginCollateral": True,
        "collateralSwitch": True,
        "locked": "0",
        "spotHedgingQty": "0",
    }
    return {
        "accountType": "UNIFIED",
        "accountIMRate": fmt_amount((pim + oim) / equity if equity > 0 else 0.0, 4),
        "accountMMRate": fmt_amount(mm / equity if equity > 0 else 0.0, 4),
        "accountLTV": "0",
        "totalEquity": fmt_amount(equity),
        "totalWalletBalance": fmt_amount(v.balance),
        "totalMarginBalance": fmt_amount(equity),
        "totalAvailableBalance": fmt_amount(max(0.0, v.available())),
        "totalPerpUPL": fmt_amount(upl),
        "totalInitialMargin": fmt_amount(pim + oim),
        "totalMaintenanceMargin": fmt_amount(mm),
        "coin": [coin],
    }


def instrument_view(v: Venue) -> dict[str, Any]:
    inst = v.inst
    return {
        "symbol": inst.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": "BTC",
        "quoteCoin": "USDT",
        "settleCoin": "USDT",
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{inst.max_leverage}.00",
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": "0.10",
            "maxPrice": "1999999.80",
            "tickSize": str(inst.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": str(inst.max_qty),
            "minOrderQty": str(inst.min_qty),
            "qtyStep": str(inst.qty_step),
            "maxMktOrderQty": str(inst.max_mkt_qty),
            "minNotionalValue": str(inst.min_notional),
            "postOnlyMaxOrderQty": str(inst.max_qty),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": inst.funding_interval_min,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
    }
