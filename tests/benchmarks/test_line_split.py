"""The split large rush merges its processes' tallies into one (benchmarks/suite/line_split.py)."""

from collections import Counter

from benchmarks.holds import Hall
from benchmarks.suite.line_rush import LineRush, Tally
from benchmarks.suite.line_split import _merge, dealt, routed


def test_tallies_of_several_processes_merge_into_one() -> None:
    first = Tally(hold_ms=[1.0], statuses=Counter({"POST 200": 2}), polls=3, seats_sold=2)
    first.series.append({"t": 1.0})
    second = Tally(hold_ms=[2.0], statuses=Counter({"POST 200": 1, "WATCH 200": 4}), polls=5)
    second.series.append({"t": 0.5})

    merged = _merge([first, second])

    assert merged.hold_ms == [1.0, 2.0]
    assert merged.statuses == Counter({"POST 200": 3, "WATCH 200": 4})
    assert (merged.polls, merged.seats_sold) == (8, 2)
    assert [point["t"] for point in merged.series] == [0.5, 1.0]  # one time line


def test_every_process_gets_early_and_late_arrivals_alike() -> None:
    shares = [dealt(20, 2, share) for share in range(2)]
    assert sorted(shares[0] + shares[1]) == list(range(20))  # each customer once
    for share in shares:  # odd customers arrive after the opening (`line_rush._customer`)
        assert sum(1 for i in share if i % 2) == sum(1 for i in share if i % 2 == 0) == 5
    assert dealt(7, 1, 0) == list(range(7))


def test_each_process_sends_to_its_router_as_a_load_balancer_with_affinity() -> None:
    hall = Hall(rows=1, cols=1, seat_ids=[1], show_ids=["shw-1"])
    one = LineRush("http://127.0.0.1:1", [], hall, 0.0, processes=2)
    assert routed(one, 1) is one  # no routers given: every process to `url`
    two = LineRush("http://a", [], hall, 0.0, processes=3, routers=("http://a", "http://b"))
    assert [routed(two, share).url for share in range(3)] == ["http://a", "http://b", "http://a"]
