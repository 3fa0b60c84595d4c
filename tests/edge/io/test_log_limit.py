"""edge.io.log_limit: a few lines of each kind per interval, the rest counted and reported with
the next line let through; the clock is injected."""

import logging

import pytest

from edge.io.log_limit import MAX_KINDS, RateLimitedLog


@pytest.fixture
def limited(caplog):
    clock = [0.0]
    logger = logging.getLogger("edge.test.log_limit")
    caplog.set_level(logging.INFO, logger=logger.name)
    yield RateLimitedLog(logger, interval_s=1.0, burst=2, clock=lambda: clock[0]), clock, caplog


def lines(caplog):
    return [r.getMessage() for r in caplog.records]


def test_a_burst_per_interval_then_the_count_with_the_next_line(limited):
    log, clock, caplog = limited
    results = [log.info("denied %d: %s", i, "bad") for i in range(100)]
    assert results == [True, True] + [False] * 98
    assert lines(caplog) == ["denied 0: bad", "denied 1: bad"]
    clock[0] = 0.99
    assert not log.info("denied %d: %s", 100, "bad")                 # still the same second
    clock[0] = 1.25
    assert log.info("denied %d: %s", 101, "bad")
    assert lines(caplog)[-1] == "denied 101: bad (99 more like it in the last 1 s)"
    assert log.info("denied %d: %s", 102, "bad")                     # the count was reported: none pending
    assert lines(caplog)[-1] == "denied 102: bad"
    assert log.suppressed == 99


def test_kinds_are_counted_apart_and_levels_too(limited):
    log, clock, caplog = limited
    for _ in range(5):
        log.info("a %s", 1)
        log.info("b %s", 1)
        log.warning("a %s", 1)
    assert lines(caplog) == ["a 1", "b 1", "a 1"] * 2


def test_a_message_without_arguments_keeps_its_percent_signs(limited):
    log, clock, caplog = limited
    for _ in range(4):
        log.info("load 100% of 50%")
    clock[0] = 2.0
    log.info("load 100% of 50%")
    assert lines(caplog) == ["load 100% of 50%"] * 2 + ["load 100% of 50% (2 more like it in the last 2 s)"]


def test_a_level_the_logger_drops_is_not_counted(limited):
    log, clock, caplog = limited
    for _ in range(10):
        assert not log.debug("noise %d", 1)
    assert log.suppressed == 0 and lines(caplog) == []


def test_the_table_of_kinds_is_bounded(limited):
    log, clock, caplog = limited
    for i in range(MAX_KINDS * 3):
        log.info(f"unique {i}")                                      # an f-string: a new kind each time
    assert len(log._kinds) == MAX_KINDS
    assert len(lines(caplog)) == MAX_KINDS * 3


@pytest.mark.parametrize("interval_s, burst", [(0, 1), (-1, 1), (1, 0)])
def test_a_limit_that_lets_nothing_through_is_refused(interval_s, burst):
    with pytest.raises(ValueError):
        RateLimitedLog(logging.getLogger("x"), interval_s=interval_s, burst=burst)
