"""A symbol's market from `book` records: snapshots, gap-free deltas, gaps, the tape and the ticker."""

from __future__ import annotations

from typing import Any

from relay.market import CANDLE_NS, DAY_CANDLES, Market, SymbolMarket

T0 = 1_764_000_000 * 10**9  # a minute boundary


def level(seq: int, side: str, price: int, qty: int) -> tuple[str, dict[str, Any]]:
    return "exchange.LevelChange", {"seq": seq, "side": side, "price": price, "qty": qty, "order_count": 1}


def trade(seq: int, price: int, qty: int, side: str = "BUY") -> tuple[str, dict[str, Any]]:
    return "exchange.Trade", {
        "seq": seq,
        "trade_id": seq * 10,
        "price": price,
        "qty": qty,
        "taker_side": side,
    }


def update(*events: tuple[str, dict[str, Any]], ts: int = T0, symbol: str = "BTC-USD") -> dict[str, Any]:
    return {"symbol": symbol, "command_offset": 0, "ts_ns": ts, "part": 0, "parts": 1, "events": list(events)}


def snapshot(seq: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> dict[str, Any]:
    def levels(side: list[tuple[int, int]]) -> list[dict[str, int]]:
        return [{"price": p, "qty": q, "order_count": 1} for p, q in side]

    return {"symbol": "BTC-USD", "seq": seq, "ts_ns": T0, "part": 0, "parts": 1,
            "bids": levels(bids), "asks": levels(asks)}  # fmt: skip


def test_deltas_from_seq_one_build_the_book() -> None:
    market = SymbolMarket("BTC-USD")

    applied = market.apply(update(level(1, "BUY", 100, 5), level(2, "SELL", 101, 3)))

    assert (applied.prev_seq, applied.seq, applied.gap) == (0, 2, False)
    assert market.book.bids.top(5) == [(100, 5)] and market.book.asks.top(5) == [(101, 3)]


def test_a_snapshot_boots_the_book_and_older_deltas_are_skipped() -> None:
    market = SymbolMarket("BTC-USD")
    reset = market.take_snapshot(snapshot(10, [(100, 5)], [(101, 3)]))

    skipped = market.apply(update(level(9, "BUY", 99, 1), level(10, "BUY", 100, 5)))
    applied = market.apply(update(level(11, "BUY", 100, 7)))

    assert reset is not None and reset.reset
    assert not skipped.advanced
    assert (applied.prev_seq, applied.seq) == (10, 11)
    assert market.book.bids.top(5) == [(100, 7)]


def test_a_record_that_straddles_the_snapshot_applies_only_what_follows_it() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(10, [(100, 5)], []))

    applied = market.apply(update(level(10, "BUY", 100, 5), level(11, "BUY", 98, 2)))

    assert (applied.prev_seq, applied.seq) == (10, 11)
    assert market.book.bids.top(5) == [(100, 5), (98, 2)]


def test_a_delta_past_the_next_seq_is_a_gap_and_changes_nothing() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(10, [(100, 5)], []))

    applied = market.apply(update(level(13, "BUY", 100, 1)))

    assert applied.gap and not applied.advanced
    assert market.gap and market.book.bids.top(5) == [(100, 5)]


def test_a_gap_closes_when_the_missing_deltas_are_read_again() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(10, [], []))
    market.apply(update(level(12, "BUY", 100, 1)))

    market.apply(update(level(11, "BUY", 99, 1)))
    market.apply(update(level(12, "BUY", 100, 1)))

    assert not market.gap and market.book.seq == 12


def test_a_following_book_ignores_newer_snapshots_but_a_gapped_one_takes_them() -> None:
    market = SymbolMarket("BTC-USD")
    market.apply(update(level(1, "BUY", 100, 1)))

    ignored = market.take_snapshot(snapshot(5, [(90, 1)], []))
    market.apply(update(level(7, "BUY", 100, 2)))
    taken = market.take_snapshot(snapshot(8, [(95, 4)], []))

    assert ignored is None
    assert taken is not None and (taken.prev_seq, taken.seq, taken.reset) == (1, 8, True)
    assert not market.gap and market.book.bids.top(5) == [(95, 4)]


def test_an_older_snapshot_never_replaces_a_newer_one() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(10, [(100, 1)], []))

    assert market.take_snapshot(snapshot(9, [(1, 1)], [])) is None
    assert market.book.bids.top(5) == [(100, 1)]


def test_trades_before_the_snapshot_count_on_the_tape_once() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(10, [], []))

    first = market.apply(update(trade(4, 100, 2), trade(5, 101, 3)))
    again = market.apply(update(trade(5, 101, 3)))

    assert [t.seq for t in first.trades] == [4, 5] and again.trades == ()
    assert market.tape.volume_24h == 5 and market.tape.last is not None and market.tape.last.price == 101


def test_a_trade_past_a_gap_is_not_counted_until_the_gap_is_read() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(10, [], []))

    skipped = market.apply(update(trade(12, 100, 2)))
    counted = market.apply(update(trade(11, 99, 1), trade(12, 100, 2)))

    assert skipped.trades == ()
    assert [t.seq for t in counted.trades] == [11, 12]


def test_candles_are_one_minute_ohlcv() -> None:
    market = SymbolMarket("BTC-USD")
    market.apply(update(trade(1, 100, 1), trade(2, 104, 2), ts=T0 + 5))
    market.apply(update(trade(3, 98, 3), ts=T0 + CANDLE_NS - 1))
    market.apply(update(trade(4, 101, 4), ts=T0 + CANDLE_NS))

    first, second = market.tape.candles

    assert (first.start_ns, first.open, first.high, first.low, first.close, first.volume, first.trades) == (
        T0, 100, 104, 98, 98, 6, 3,
    )  # fmt: skip
    assert (second.start_ns, second.open, second.volume) == (T0 + CANDLE_NS, 101, 4)


def test_the_24h_volume_forgets_candles_older_than_a_day() -> None:
    market = SymbolMarket("BTC-USD")
    market.apply(update(trade(1, 100, 5), ts=T0))
    market.apply(update(trade(2, 100, 7), ts=T0 + (DAY_CANDLES - 1) * CANDLE_NS))
    within = market.tape.volume_24h
    market.apply(update(trade(3, 100, 1), ts=T0 + DAY_CANDLES * CANDLE_NS))

    assert (within, market.tape.volume_24h) == (12, 8)


def test_the_ticker_has_the_best_levels_the_last_trade_and_the_status() -> None:
    market = SymbolMarket("BTC-USD")
    market.apply(update(level(1, "BUY", 99, 5), level(2, "SELL", 101, 3), trade(3, 100, 2)))
    market.apply(update(("exchange.TradingStatus", {"seq": 4, "halted": True})))

    ticker = market.ticker()

    assert (ticker.seq, ticker.bid, ticker.ask, ticker.last, ticker.volume_24h, ticker.halted) == (
        4, (99, 5), (101, 3), (100, 2), 2, True,
    )  # fmt: skip


def test_the_market_makes_a_symbol_on_its_first_record_and_lists_gaps() -> None:
    market = Market()
    market.apply(update(level(1, "BUY", 1, 1), symbol="NEW-1"))
    market.apply(update(level(5, "BUY", 1, 1), symbol="OLD-1"))

    assert market.of("NEW-1").book.seq == 1
    assert market.gaps() == ["OLD-1"]


def test_once_caught_up_a_booted_book_follows_its_deltas_and_ignores_a_newer_snapshot() -> None:
    market = Market()
    market.take_snapshot(snapshot(10, [(100, 5)], []))
    market.follow()

    ignored = market.take_snapshot(snapshot(12, [(99, 1)], []))  # read before the deltas it covers
    applied = market.apply(update(level(11, "BUY", 98, 2), level(12, "BUY", 100, 0)))

    assert ignored is None
    assert (applied.prev_seq, applied.seq) == (10, 12)
    assert market.of("BTC-USD").book.bids.top(5) == [(98, 2)]


def test_once_caught_up_a_gapped_book_still_takes_a_snapshot() -> None:
    market = Market()
    market.follow()
    market.apply(update(level(5, "BUY", 100, 1)))  # a new symbol whose first deltas are gone

    taken = market.take_snapshot(snapshot(8, [(95, 4)], []))

    assert taken is not None and taken.reset
