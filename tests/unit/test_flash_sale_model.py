"""The flash-sale benchmark's model: buyers, marketplaces and the push path on a virtual clock."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.flash_sale_model import (
    FlashSale,
    Order,
    Scenario,
    Strategy,
    engine_window_s,
    make_orders,
    split,
)

SKU = "hot00"
NO_BUFFER = Strategy("engine, no buffer")
ONE_SKU = Scenario(hot_skus=1, hot_units=3, cold_skus=0, hot_demand_share=1.0, orders=0)
INSTANT = replace(ONE_SKU, apply_ms=(("ozon", 0), ("wb", 0), ("ym", 0)))


def order(t_ms: int, channel: str, heard_ms: int = 500) -> Order:
    return Order(t_ms, channel, SKU, t_ms + heard_ms)


def test_a_channel_showing_zero_never_sells():
    orders = [order(t, "ozon") for t in range(0, 5_000, 1_000)]
    sim = FlashSale(ONE_SKU, Strategy("held back", buffer=3), orders, seed=1)
    assert sim.shown["ozon"][SKU] == 0
    out = sim.run()
    assert out.sold == 0
    assert out.could == 3
    assert out.lost == 3  # 5 buyers turned away, 3 units left: 3 sales lost to the buffer


def test_one_channel_with_no_buffer_sells_its_stock_and_no_more():
    orders = [order(t, "ozon") for t in range(0, 5_000, 500)]
    out = FlashSale(ONE_SKU, NO_BUFFER, orders, seed=1).run()
    assert (out.sold, out.oversold, out.lost) == (3, 0, 0)


def test_fast_propagation_keeps_two_channels_within_stock():
    # Sales 10 s apart on WB and YM: each is heard of (WB within a 5 s poll) and pushed before
    # the next buyer comes.
    orders = [
        order(t, "wb" if i % 2 else "ym", 300) for i, t in enumerate(range(0, 60_000, 10_000))
    ]
    out = FlashSale(INSTANT, NO_BUFFER, orders, seed=1).run()
    assert (out.sold, out.oversold) == (3, 0)
    # The same demand with YM's minutes-long delay: YM keeps showing 3 and oversells.
    slow_ym = replace(INSTANT, apply_ms=(("ozon", 0), ("wb", 0), ("ym", 180_000)))
    assert FlashSale(slow_ym, NO_BUFFER, orders, seed=1).run().oversold > 0


def test_ozon_refuses_an_item_it_took_less_than_30_s_ago():
    sim = FlashSale(ONE_SKU, NO_BUFFER, [], seed=1)
    assert sim.receive("ozon", [(SKU, 2)]) == [(SKU, 2, True)]
    sim.now = 29_999
    assert sim.receive("ozon", [(SKU, 1)]) == [(SKU, 1, False)]
    assert sim.receive("wb", [(SKU, 1)]) == [(SKU, 1, True)]  # WB has no per-item window
    sim.now = 30_000
    assert sim.receive("ozon", [(SKU, 1)]) == [(SKU, 1, True)]


def test_ozon_window_delays_the_second_update_of_an_item():
    big = replace(INSTANT, hot_units=10)
    sim = FlashSale(big, NO_BUFFER, [order(1_000, "ym"), order(3_000, "ym")], seed=1)
    arrivals: list[tuple[int, str, int, bool]] = []
    receive = sim.receive

    def spy(c: str, updates: list[tuple[str, int]]) -> list[tuple[str, int, bool]]:
        results = receive(c, updates)
        arrivals.extend((sim.now, c, value, ok) for _, value, ok in results)
        return results

    sim.receive = spy  # type: ignore[method-assign]
    sim.run()
    ozon = [(t, value) for t, c, value, ok in arrivals if c == "ozon" and ok]
    wb = [(t, value) for t, c, value, ok in arrivals if c == "wb"]
    assert [value for _, value in ozon] == [9, 8]
    assert ozon[1][0] - ozon[0][0] >= 30_000  # the engine waits for the window
    assert [value for _, value in wb] == [9, 8]
    assert wb[1][0] < 6_000  # WB took the second value at once
    assert all(ok for *_, ok in arrivals)  # nothing was refused: the margin holds


def test_a_push_shows_again_sales_the_engine_had_not_heard_of():
    sim = FlashSale(ONE_SKU, NO_BUFFER, [order(0, "wb", heard_ms=60_000)], seed=1)
    sim.run()
    assert sim.shown["wb"][SKU] == 2
    sim.on_apply("wb", SKU, 3, sim.sold_on["wb"][SKU])  # a push computed before the sale
    assert sim.shown["wb"][SKU] == 3
    sim.on_apply("wb", SKU, 3, sim.sold_on["wb"][SKU] - 1)  # the sale came after it arrived
    assert sim.shown["wb"][SKU] == 2


def test_dynamic_buffer_window_is_the_publishers_default():
    assert engine_window_s("ozon") == 30  # Ozon's item window
    assert engine_window_s("wb") == 60
    assert engine_window_s("ym") == 60
    assert engine_window_s("ym", 180.0) == 180


def test_split_places_every_unit():
    percents = {"ozon": 45, "wb": 35, "ym": 20}
    assert split(20, percents) == {"ozon": 9, "wb": 7, "ym": 4}
    assert split(2, percents) == {"ozon": 1, "wb": 1, "ym": 0}
    assert split(1, percents) == {"ozon": 1, "wb": 0, "ym": 0}
    assert split(0, percents) == {"ozon": 0, "wb": 0, "ym": 0}


def test_same_seed_same_demand_and_allotments_do_not_oversell():
    sc = Scenario()
    orders = make_orders(sc, 3)
    assert orders == make_orders(sc, 3)
    assert len(orders) == sc.orders
    assert all(o.notify_ms > o.t_ms for o in orders)
    engine = FlashSale(sc, NO_BUFFER, orders, seed=3).run()
    allotments = FlashSale(sc, Strategy("allot", allot=True), orders, seed=3).run()
    assert engine.oversold > 0
    assert allotments.oversold == 0
    assert allotments.could == engine.could <= sum(sc.stock().values())
