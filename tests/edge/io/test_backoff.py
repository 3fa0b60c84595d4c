"""The shared retry timing of cameras, serial ports and MAVLink links."""

from edge.io.backoff import Backoff


def test_wait_doubles_to_the_cap_and_restarts_after_a_success():
    clock = [0.0]
    b = Backoff(0.5, 3.0, clock=lambda: clock[0])
    assert b.due()
    assert [b.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert not b.due()
    clock[0] += 2.9
    assert not b.due()
    clock[0] += 0.1
    assert b.due()
    b.succeeded()
    assert b.failed() == 0.5
