"""`DeviceClock` (clock.mode: device): the newest device time, and waiting for it."""

from __future__ import annotations

import threading
import time

from gateway.clock import DeviceClock, ManualClock


def test_before_any_device_time_the_fallback_answers_and_the_clock_has_not_started() -> None:
    clock = DeviceClock(ManualClock(100.0))
    assert not clock.started
    assert clock.now() == 100.0


def test_the_first_device_time_is_taken_as_it_is_later_ones_only_move_it_forward() -> None:
    clock = DeviceClock(ManualClock(100.0))
    clock.follow(50.0)  # earlier than the fallback: still taken, it is the devices' time
    assert clock.started
    assert clock.now() == 50.0
    clock.follow(40.0)
    assert clock.now() == 50.0
    clock.follow(75.5)
    assert clock.now() == 75.5


def test_wait_until_returns_when_device_time_reaches_the_target() -> None:
    clock = DeviceClock(ManualClock(0.0))
    clock.follow(10.0)
    reached: list[bool] = []
    waiter = threading.Thread(target=lambda: reached.append(clock.wait_until(20.0, timeout=10.0)))
    waiter.start()
    clock.follow(15.0)  # not yet
    clock.follow(20.0)
    waiter.join(5.0)
    assert reached == [True]


def test_wait_until_none_waits_for_the_first_device_time() -> None:
    clock = DeviceClock(ManualClock(0.0))
    reached: list[bool] = []
    waiter = threading.Thread(target=lambda: reached.append(clock.wait_until(None, timeout=10.0)))
    waiter.start()
    clock.follow(1_900_000_000.0)
    waiter.join(5.0)
    assert reached == [True]


def test_wait_until_gives_up_after_the_timeout_in_real_time() -> None:
    clock = DeviceClock(ManualClock(0.0))
    clock.follow(10.0)
    started = time.monotonic()
    assert clock.wait_until(11.0, timeout=0.05) is False
    assert time.monotonic() - started >= 0.04


def test_wake_releases_a_waiter_and_every_later_wait() -> None:
    clock = DeviceClock(ManualClock(0.0))
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(clock.wait_until(1e12, timeout=30.0)))
    waiter.start()
    clock.wake()
    waiter.join(5.0)
    assert not waiter.is_alive()
    assert results == [False]
    assert clock.wait_until(1e12, timeout=30.0) is False  # at once
