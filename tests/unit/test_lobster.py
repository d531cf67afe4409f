"""`exchange replay-lobster`: LOBSTER parsing, the window rules, and real Nasdaq flow through the core.

The real-flow tests read the shared sample data (`../shared/data/lobster` beside the project);
the small tests build LOBSTER folders by hand, so each rule is seen on a few rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.lobster import (
    BUY,
    SELL,
    BookRow,
    Fill,
    LobsterFormatError,
    Message,
    ReplayReport,
    consume,
    known_at,
    known_levels_match,
    levels_revealed,
    levels_to_copy,
    open_folder,
    parse_book_row,
    parse_message,
    parse_time,
    read_rows,
    replay_folder,
    split_fills,
    steps,
    top_of_book_matches,
)
from exchange.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOBSTER_DATA = PROJECT_ROOT.parent / "shared" / "data" / "lobster"

EMPTY_LEVEL = (9_999_999_999, 0, -9_999_999_999, 0)

# ---------------------------------------------------------------------------------------------
# Hand-made folders

MessageRow = tuple[str, int, int, int, int, int]  # time, type, order id, size, price, direction


def book_row(asks: Sequence[tuple[int, int]], bids: Sequence[tuple[int, int]], levels: int) -> list[int]:
    """An orderbook.csv row: ask price, ask size, bid price, bid size per level, padded with empty levels."""
    values: list[int] = []
    for level in range(levels):
        ask = asks[level] if level < len(asks) else EMPTY_LEVEL[:2]
        bid = bids[level] if level < len(bids) else EMPTY_LEVEL[2:]
        values += [*ask, *bid]
    return values


def write_folder(
    parent: Path, name: str, messages: Sequence[MessageRow], books: Sequence[Sequence[int]]
) -> Path:
    folder = parent / name
    folder.mkdir()
    (folder / "message.csv").write_text("".join(",".join(map(str, m)) + "\n" for m in messages))
    (folder / "orderbook.csv").write_text("".join(",".join(map(str, b)) + "\n" for b in books))
    return folder


def msg(time: int, kind: int, order_id: int, size: int, price: int, direction: int) -> Message:
    return Message(time, kind, order_id, size, price, direction)


# ---------------------------------------------------------------------------------------------
# Parsing


def test_message_row_parses_into_typed_fields() -> None:
    message = parse_message(["34200.015105074", "4", "15818974", "4", "5794000", "1"], line=1)

    assert message == Message(34_200_015_105_074, 4, 15818974, 4, 5794000, BUY)


def test_time_is_kept_to_the_nanosecond() -> None:
    assert parse_time("34200.015105074") == 34_200_015_105_074
    assert parse_time("34201.5") == 34_201_500_000_000
    assert parse_time("57600") == 57_600_000_000_000


def test_half_cent_hidden_execution_is_accepted() -> None:
    message = parse_message(["34201.5", "5", "0", "100", "5777750", "-1"], line=7)

    assert message.price == 5777750


def test_message_with_wrong_column_count_names_its_line() -> None:
    with pytest.raises(LobsterFormatError, match="line 3: 5 columns"):
        parse_message(["34200.1", "1", "7", "100", "5794000"], line=3)


def test_message_of_unknown_type_is_refused() -> None:
    with pytest.raises(LobsterFormatError, match="unknown event type 9"):
        parse_message(["34200.1", "9", "7", "100", "5794000", "1"], line=1)


def test_message_with_direction_other_than_plus_minus_one_is_refused() -> None:
    with pytest.raises(LobsterFormatError, match="direction 0"):
        parse_message(["34200.1", "1", "7", "100", "5794000", "0"], line=1)


def test_message_with_text_where_numbers_belong_is_refused() -> None:
    with pytest.raises(LobsterFormatError, match="not a LOBSTER message"):
        parse_message(["Time", "Type", "OrderID", "Size", "Price", "Direction"], line=1)


def test_book_row_skips_empty_levels() -> None:
    fields = [str(v) for v in book_row([(5802300, 100)], [(5794000, 496), (5787000, 400)], levels=3)]

    row = parse_book_row(fields, levels=3, line=1)

    assert row == BookRow(asks=[(5802300, 100)], bids=[(5794000, 496), (5787000, 400)])


def test_book_row_with_wrong_column_count_is_refused() -> None:
    with pytest.raises(LobsterFormatError, match=r"orderbook\.csv line 2: 6 columns, expected 8"):
        parse_book_row(["1"] * 6, levels=2, line=2)


# ---------------------------------------------------------------------------------------------
# The folder


def test_folder_name_and_column_count_give_ticker_date_and_levels(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, "MSFT_2012-06-21_3", [], [book_row([], [], levels=3)])

    found = open_folder(folder)

    assert (found.ticker, found.date, found.levels) == ("MSFT", "2012-06-21", 3)


def test_lobster_original_file_names_are_recognised(tmp_path: Path) -> None:
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "INTC_2012-06-21_34200000_57600000_message_2.csv").write_text("34200.1,1,1,100,300000,1\n")
    (folder / "INTC_2012-06-21_34200000_57600000_orderbook_2.csv").write_text(
        ",".join(map(str, book_row([], [(300000, 100)], levels=2))) + "\n"
    )

    found = open_folder(folder)

    assert (found.ticker, found.date, found.levels) == ("INTC", "2012-06-21", 2)


def test_level_count_comes_from_the_orderbook_when_the_name_has_none(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, "some-data", [], [book_row([], [], levels=4)])

    assert open_folder(folder).levels == 4


def test_name_that_contradicts_the_column_count_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, "GOOG_2012-06-21_10", [], [book_row([], [], levels=5)])

    with pytest.raises(LobsterFormatError, match=r"has 5 levels \(20 columns\); its name says 10"):
        open_folder(folder)


def test_folder_without_lobster_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")

    with pytest.raises(LobsterFormatError, match="is not a LOBSTER folder"):
        open_folder(tmp_path)


def test_orderbook_whose_columns_are_not_four_per_level_is_refused(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, "X", [], [[1, 2, 3, 4, 5, 6]])

    with pytest.raises(
        LobsterFormatError, match="line 1 has 6 columns; LOBSTER orderbook rows have 4 per level"
    ):
        open_folder(folder)


def test_files_of_different_length_are_refused(tmp_path: Path) -> None:
    row = book_row([], [(5794000, 100)], levels=1)
    folder = write_folder(tmp_path, "X_2012-06-21_1", [("34200.1", 1, 1, 100, 5794000, 1)], [row, row])

    with pytest.raises(LobsterFormatError, match="differ in length after line 1"):
        list(read_rows(open_folder(folder)))


def test_replaying_a_folder_that_is_not_lobster_data_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "message.csv").write_text("time,type\n")
    (tmp_path / "orderbook.csv").write_text("a,b,c,d\n")

    status = main(["replay-lobster", str(tmp_path)])

    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("exchange replay-lobster: error: message.csv line 1")
    assert err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# Steps: sweeps of executions


def test_executions_of_one_timestamp_and_direction_form_one_sweep() -> None:
    empty = BookRow([], [])
    rows = [
        (msg(1_000_000_000, 1, 1, 100, 5000000, BUY), empty),
        (msg(2_000_000_000, 4, 2, 100, 5010000, SELL), empty),
        (msg(2_000_000_000, 5, 0, 50, 5010500, SELL), empty),
        (msg(2_000_000_000, 4, 3, 100, 5020000, SELL), empty),
        (msg(2_000_000_000, 4, 4, 100, 4990000, BUY), empty),
        (msg(3_000_000_000, 4, 5, 100, 5020000, SELL), empty),
    ]

    cut = [[message.order_id for message, _ in step] for step in steps(rows)]

    assert cut == [[1], [2, 0, 3], [4], [5]]


def test_hidden_execution_alone_is_its_own_step() -> None:
    rows = [(msg(2_000_000_000, 5, 0, 50, 5010500, SELL), BookRow([], []))]

    assert [len(step) for step in steps(rows)] == [1]


# ---------------------------------------------------------------------------------------------
# The window rules


def test_levels_below_the_deepest_known_level_are_copied() -> None:
    known = [(5000000, 100), (4990000, 200)]
    row = [(5000000, 100), (4990000, 200), (4980000, 300)]

    assert levels_to_copy(known, row, BUY) == [(4980000, 300)]


def test_nothing_inside_the_known_range_is_copied() -> None:
    known = [(5010000, 100), (5030000, 100)]
    row = [(5010000, 100), (5020000, 700), (5030000, 100)]

    assert levels_to_copy(known, row, SELL) == []


def test_an_empty_side_copies_the_whole_row() -> None:
    row = [(5010000, 100), (5020000, 700)]

    assert levels_to_copy([], row, SELL) == row


def test_levels_revealed_during_a_sweep_remember_the_row_that_first_shows_them() -> None:
    known = [(5010000, 100), (5020000, 100)]
    rows = [
        [(5020000, 100), (5030000, 400)],
        [(5030000, 400), (5040000, 500)],
    ]

    assert levels_revealed(known, rows, SELL) == {5030000: (0, 400), 5040000: (1, 500)}


def test_a_revealed_level_counts_as_known_only_after_its_row() -> None:
    levels = [(5030000, 400), (5040000, 500)]

    assert known_at(levels, {5030000: 0, 5040000: 1}, row=1) == [(5030000, 400)]


def test_top_of_book_compares_price_and_size_on_both_sides() -> None:
    row = BookRow(asks=[(5010000, 100)], bids=[(5000000, 200), (4990000, 100)])

    assert top_of_book_matches([(5000000, 200)], [(5010000, 100)], row)
    assert not top_of_book_matches([(5000000, 201)], [(5010000, 100)], row)
    assert not top_of_book_matches([(5000000, 200)], [], row)


def test_known_levels_ignore_deeper_row_levels_but_not_wrong_ones() -> None:
    row = BookRow(asks=[(5010000, 100)], bids=[(5000000, 200), (4990000, 100)])

    assert known_levels_match([(5000000, 200)], [(5010000, 100)], row)
    assert not known_levels_match([(5000000, 200), (4980000, 100)], [(5010000, 100)], row)


def test_fills_are_cut_into_runs_of_the_rows_sizes() -> None:
    fills = [Fill(maker=7, price=5010000, qty=150), Fill(maker=8, price=5020000, qty=50)]

    runs = split_fills(fills, [100, 100])

    assert runs == [
        [Fill(7, 5010000, 100)],
        [Fill(7, 5010000, 50), Fill(8, 5020000, 50)],
    ]


def test_consume_takes_the_first_shares_of_the_fills_off_the_levels() -> None:
    levels = [(5010000, 100), (5020000, 300)]
    fills = [Fill(7, 5010000, 100), Fill(8, 5020000, 200)]

    assert consume(levels, fills, 150) == [(5020000, 250)]


# ---------------------------------------------------------------------------------------------
# Replays of hand-made folders through the core

BID, ASK, ASK_2 = 1_000_000, 1_001_000, 1_002_000  # $100.00, $100.10, $100.20


def replay_rows(tmp_path: Path, levels: int, rows: Sequence[tuple[MessageRow, BookRow]]) -> ReplayReport:
    """Write the rows as a LOBSTER folder with `levels` levels and replay it through the core."""
    books = [book_row(book.asks, book.bids, levels) for _, book in rows]
    folder = write_folder(tmp_path, f"TEST_2012-06-21_{levels}", [m for m, _ in rows], books)
    return replay_folder(folder)


def test_delete_of_an_order_resting_before_the_file_takes_seeded_volume(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 1, 1, 100, BID, BUY), BookRow(asks=[(ASK, 200)], bids=[(BID, 100)])),
        (("34200.1", 3, 99, 50, ASK, SELL), BookRow(asks=[(ASK, 150)], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.unknown_ids, report.unexplained_shares) == (1, 0)
    assert report.top_of_book_matched == report.rows_compared == 1


def test_level_pushed_out_of_the_window_is_dropped_and_copied_back_when_it_returns(tmp_path: Path) -> None:
    better_bid = 1_000_500  # $100.05
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.1", 1, 5, 200, better_bid, BUY), BookRow(asks=[(ASK, 100)], bids=[(better_bid, 200)])),
        (("34200.2", 3, 5, 200, better_bid, BUY), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.3", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.levels_dropped, report.levels_copied) == (1, 1)
    # Row 2's best bid came from beyond the level-1 window: only the orderbook file could tell it.
    assert (report.rows_compared, report.top_of_book_matched) == (3, 2)


def test_sweep_is_one_synthetic_order_whose_fills_follow_time_priority(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.1", 1, 1, 100, ASK_2, SELL), BookRow(asks=[(ASK, 100), (ASK_2, 100)], bids=[(BID, 100)])),
        (("34200.2", 1, 2, 50, ASK_2, SELL), BookRow(asks=[(ASK, 100), (ASK_2, 150)], bids=[(BID, 100)])),
        (("34200.3", 4, 77, 100, ASK, SELL), BookRow(asks=[(ASK_2, 150)], bids=[(BID, 100)])),
        (("34200.3", 5, 0, 30, ASK + 50, SELL), BookRow(asks=[(ASK_2, 150)], bids=[(BID, 100)])),
        (("34200.3", 4, 1, 100, ASK_2, SELL), BookRow(asks=[(ASK_2, 50)], bids=[(BID, 100)])),
        (("34200.3", 4, 2, 50, ASK_2, SELL), BookRow(asks=[], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 2, rows)

    # Row 0 only seeds the book, so its hidden trade is not replayed.
    assert (report.sweeps, report.executions, report.fills, report.hidden_trades) == (1, 3, 3, 1)
    # The seeded level is not fully visible; both orders of the second level are the file's own.
    assert (report.fifo_checked, report.fifo_matched) == (2, 2)
    assert report.top_of_book_matched == report.rows_compared == 6


def test_feed_execution_out_of_time_priority_is_a_fifo_miss_and_the_book_stays_exact(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[], bids=[(BID, 100)])),
        (("34200.1", 1, 1, 100, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.2", 1, 2, 60, ASK, SELL), BookRow(asks=[(ASK, 160)], bids=[(BID, 100)])),
        (("34200.3", 4, 2, 60, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.4", 2, 1, 30, ASK, SELL), BookRow(asks=[(ASK, 70)], bids=[(BID, 100)])),
        (("34200.5", 3, 1, 70, ASK, SELL), BookRow(asks=[], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.fifo_checked, report.fifo_matched) == (1, 0)
    assert report.top_of_book_matched == report.rows_compared == 5
    assert (report.unexplained_shares, report.rejected) == (0, 0)


def test_sweep_trades_into_a_level_that_only_its_rows_reveal(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.1", 4, 70, 100, ASK, SELL), BookRow(asks=[(ASK_2, 300)], bids=[(BID, 100)])),
        (("34200.1", 4, 71, 100, ASK_2, SELL), BookRow(asks=[(ASK_2, 200)], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.levels_copied, report.unfilled_shares) == (1, 0)
    # After the first execution the best ask lies beyond the level-1 window: a miss, as in the file.
    assert (report.rows_compared, report.top_of_book_matched) == (2, 1)


def test_hidden_execution_at_half_a_cent_is_a_trade_and_leaves_the_book(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.1", 5, 0, 40, BID + 50, BUY), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.hidden_trades, report.rejected) == (1, 0)
    assert report.top_of_book_matched == report.rows_compared == 1


def test_halt_stops_new_orders_until_trading_resumes(tmp_path: Path) -> None:
    book = BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), book),
        (("34200.1", 7, 0, 0, -1, SELL), book),
        (("34200.2", 1, 1, 100, BID, BUY), book),  # refused by the halted core
        (("34200.3", 7, 0, 0, 1, SELL), book),
        (("34200.4", 1, 2, 100, BID, BUY), BookRow(asks=[(ASK, 100)], bids=[(BID, 200)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.halts, report.rejected) == (1, 1)
    assert report.top_of_book_matched == report.rows_compared == 4


def test_message_that_disagrees_with_the_orderbook_is_a_miss(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.1", 2, 99, 40, BID, BUY), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
    ]

    report = replay_rows(tmp_path, 1, rows)

    assert (report.rows_compared, report.top_of_book_matched) == (1, 0)


def test_visible_price_off_the_tick_grid_is_refused(tmp_path: Path) -> None:
    rows = [
        (("34200.0", 5, 0, 10, ASK, SELL), BookRow(asks=[(ASK, 100)], bids=[(BID, 100)])),
        (("34200.1", 1, 1, 100, BID + 50, BUY), BookRow(asks=[(ASK, 100)], bids=[(BID + 50, 100)])),
    ]

    with pytest.raises(
        LobsterFormatError, match="line 2: visible price 1000050 is not a whole number of ticks"
    ):
        replay_rows(tmp_path, 1, rows)


# ---------------------------------------------------------------------------------------------
# Real Nasdaq flow (the shared LOBSTER sample files)

needs_data = pytest.mark.skipif(not LOBSTER_DATA.is_dir(), reason=f"no LOBSTER data at {LOBSTER_DATA}")


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


@pytest.fixture(scope="module")
def goog_l10() -> ReplayReport:
    return replay_folder(LOBSTER_DATA / "GOOG_2012-06-21_10")


@pytest.fixture(scope="module")
def amzn_l5() -> ReplayReport:
    return replay_folder(LOBSTER_DATA / "AMZN_2012-06-21_5")


@needs_data
@pytest.mark.parametrize(
    ("fixture", "folder"), [("goog_l10", "GOOG_2012-06-21_10"), ("amzn_l5", "AMZN_2012-06-21_5")]
)
def test_real_flow_top_of_book_matches_every_row(
    fixture: str, folder: str, request: pytest.FixtureRequest
) -> None:
    report: ReplayReport = request.getfixturevalue(fixture)

    rows = count_lines(LOBSTER_DATA / folder / "message.csv")
    assert report.rows == rows
    assert report.top_of_book_matched == report.rows_compared == rows - 1


@needs_data
@pytest.mark.parametrize("fixture", ["goog_l10", "amzn_l5"])
def test_real_flow_fills_follow_time_priority_on_99_percent_of_fully_visible_executions(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    report: ReplayReport = request.getfixturevalue(fixture)

    assert report.fifo_checked >= 0.5 * report.executions  # the check covers most executions
    assert report.fifo_matched >= 0.99 * report.fifo_checked


@needs_data
@pytest.mark.parametrize("fixture", ["goog_l10", "amzn_l5"])
def test_real_flow_every_share_the_feed_moves_is_found_in_the_core(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    report: ReplayReport = request.getfixturevalue(fixture)

    assert report.known_levels_matched == report.rows_compared
    assert (report.unexplained_shares, report.unfilled_shares, report.crossed_adds, report.rejected) == (
        0,
        0,
        0,
        0,
    )


@needs_data
def test_level_1_file_misses_where_only_the_orderbook_knows_the_next_price() -> None:
    report = replay_folder(LOBSTER_DATA / "AAPL_2012-06-21_1")

    # Every level the core holds agrees; the misses are rows whose best price lay beyond the window.
    assert report.known_levels_matched == report.rows_compared
    assert report.top_of_book_matched < 0.8 * report.rows_compared
    assert report.rows_compared - report.top_of_book_matched == report.levels_copied


@needs_data
def test_command_prints_one_json_line_with_the_match_figures(capsys: pytest.CaptureFixture[str]) -> None:
    folder = LOBSTER_DATA / "AAPL_2012-06-21_10"

    status = main(["replay-lobster", str(folder)])

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["rows"] == count_lines(folder / "message.csv")
    assert (result["ticker"], result["levels"]) == ("AAPL", 10)
    assert result["top_of_book_match"] == 100.0
    assert result["fifo_match"] >= 99.0
    assert {"top_of_book_matched", "rows_compared", "fifo_checked", "fifo_matched"} <= result.keys()
