"""A third-party Deribit client (ccxt, from PyPI) against `stoic sim`, used as a new user would.

Usage: python ccxt_client.py http://127.0.0.1:PORT
Exits non-zero (AssertionError / exception) on any failure.
"""
import math
import sys

import ccxt

base = sys.argv[1].rstrip("/")


def client(key, secret):
    ex = ccxt.deribit({"apiKey": key, "secret": secret, "enableRateLimit": True, "timeout": 10000})
    # Point every REST call at the simulator instead of www.deribit.com.
    ex.urls["api"] = {"rest": base}
    return ex


ex = client("sim-dev-trade", "sim-dev-trade-secret-0001")

markets = ex.load_markets()
options = [m for m in markets.values() if m["option"] and m["base"] == "BTC"]
swaps = [m for m in markets.values() if m["swap"]]
futures = [m for m in markets.values() if m["future"]]
assert len(options) >= 20, f"expected a BTC option chain, got {len(options)}"
assert any(m["id"] == "BTC-PERPETUAL" for m in swaps), "BTC-PERPETUAL missing"
assert any(m["id"] == "ETH-PERPETUAL" for m in swaps), "ETH-PERPETUAL missing"
assert futures, "no dated futures"
print(f"markets: {len(markets)} ({len(options)} BTC options, {len(swaps)} perps, {len(futures)} futures)")

# An at-the-money-ish call with a two-sided book.
opt = None
for m in sorted(options, key=lambda m: (m["expiry"], abs((m["strike"] or 0) - 100000))):
    ob = ex.fetch_order_book(m["symbol"])
    if ob["bids"] and ob["asks"] and m["optionType"] == "call":
        opt = m
        break
assert opt is not None, "no option with a two-sided book"
best_bid, best_ask = ob["bids"][0][0], ob["asks"][0][0]
assert best_bid < best_ask, f"crossed book {best_bid} >= {best_ask}"
print(f"order book {opt['id']}: bid {best_bid} ask {best_ask}")

ticker = ex.fetch_ticker(opt["symbol"])
assert ticker["bid"] == best_bid or ticker["bid"] is not None, ticker
assert ticker["info"]["instrument_name"] == opt["id"]
assert float(ticker["info"]["mark_price"]) > 0
print(f"ticker {opt['id']}: mark {ticker['info']['mark_price']} iv {ticker['info'].get('mark_iv')}")

bal = ex.fetch_balance()
assert abs(bal["BTC"]["total"] - 10.0) < 1e-9, bal["BTC"]
print(f"balance BTC total {bal['BTC']['total']} free {bal['BTC']['free']}")

# Post-only bid well below the best bid: it must rest. ccxt rounds to the base tick (0.0001),
# but Deribit options tick 0.0005 above 0.005 (`tick_size_steps`); a multiple of 0.0005 is on
# the grid in both bands, whatever the front expiry's prices are today.
price = round(max(math.floor(best_bid / 2 / 0.0005) * 0.0005, 0.0005), 4)
order = ex.create_order(opt["symbol"], "limit", "buy", 0.5, price, {"post_only": True, "label": "ccxt-probe-1"})
assert order["id"], order
assert order["status"] == "open", order
print(f"placed {order['id']} buy 0.5 @ {price} post-only -> {order['status']}")

opens = ex.fetch_open_orders(opt["symbol"])
assert any(o["id"] == order["id"] for o in opens), opens
print(f"open orders: {[o['id'] for o in opens]}")

cancelled = ex.cancel_order(order["id"], opt["symbol"])
assert cancelled["status"] == "canceled", cancelled
opens = ex.fetch_open_orders(opt["symbol"])
assert not any(o["id"] == order["id"] for o in opens), opens
print(f"cancelled {order['id']}")

# A read-only key is refused trading with the venue's error (13021 forbidden).
ro = client("sim-dev-read", "sim-dev-read-secret-0002")
ro.markets = ex.markets
ro.markets_by_id = ex.markets_by_id
ro.symbols = ex.symbols
try:
    ro.create_order(opt["symbol"], "limit", "buy", 0.5, price, {"post_only": True})
    raise AssertionError("read-only key placed an order")
except ccxt.BaseError as e:
    assert "13021" in str(e) or "forbidden" in str(e), e
    print(f"read-only key refused: {type(e).__name__}")

bal = ex.fetch_balance()
assert abs(bal["BTC"]["total"] - 10.0) < 1e-9, bal["BTC"]
print("ccxt third-party client: OK")
