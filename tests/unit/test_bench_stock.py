"""The journey benchmark's stock on a kept deployment: delivered when the shelf runs low, not every run."""

from bench.history import REORDER_RUNS, reorder, stock_left
from bench.traffic import STOCK_LASTS, stock_units


def test_a_run_not_kept_is_delivered_for_in_full():
    assert reorder(None, 201, kept=False) == (201, None)


def test_a_kept_deployment_is_restocked_only_when_its_shelf_cannot_cover_the_run_and_then_for_several_runs():
    first, shelf = reorder(stock_left(None), 201, kept=True)  # a new deployment: nothing on the shelf
    assert first == REORDER_RUNS * 201 and shelf == stock_units(first) * STOCK_LASTS - 201 > 0
    runs = [reorder(shelf, 201, kept=True)]
    while runs[-1][0] == 0:
        runs.append(reorder(runs[-1][1], 201, kept=True))
    assert len(runs) >= REORDER_RUNS, "the next runs are covered by what the first delivered"
    assert runs[-1][0] >= REORDER_RUNS * 201 - runs[-2][1] and all(left is not None and left >= 0 for _, left in runs), "restocked before it ran short"


def test_a_deployment_kept_before_its_shelf_was_counted_is_delivered_for_once_and_counted_from_there():
    assert stock_left({"history_events": 200174}) is None
    delivered, shelf = reorder(None, 201, kept=True)
    assert delivered == REORDER_RUNS * 201 and shelf == stock_units(delivered) * STOCK_LASTS - 201
    assert stock_left({"stock_journeys_left": shelf}) == shelf


def test_a_shelf_the_history_overdrew_is_made_good_before_the_run():
    delivered, shelf = reorder(-30, 1000, kept=True)
    assert delivered == REORDER_RUNS * 1000 and shelf is not None and shelf > 0
    assert reorder(-30, 201, kept=False) == (231, None)
