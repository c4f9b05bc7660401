"""Data quality of one device: rate budget, schema drift, stuck occupancy, battery."""

from __future__ import annotations

from devices.quality import DeviceQuality, QualityParams

P = QualityParams(max_rate=10.0, burst=20.0, schema_learn_messages=3, schema_learn_seconds=60.0)
T0 = 1_000.0


def test_a_device_within_its_rate_is_never_throttled() -> None:
    q = DeviceQuality()
    assert all(q.admit(T0 + i * 0.1, P) for i in range(600))  # exactly 10/s for a minute
    assert q.throttled == 0
    assert not q.flooding(T0 + 60, P)
    assert 9.0 <= q.rate(T0 + 59.9) <= 11.0


def test_a_burst_is_absorbed_then_the_excess_throttled_and_flagged() -> None:
    q = DeviceQuality()
    admitted = [q.admit(T0 + i * 0.0005, P) for i in range(2000)]  # 2,000 msgs/s for 1 s
    # The burst (20) plus what 1 s of refill allows (10): the rest is throttled.
    assert 20 <= sum(admitted) <= 31
    assert q.throttled == 2000 - sum(admitted)
    assert q.flooding(T0 + 1, P)
    assert q.rate(T0 + 1) > 150  # a moving average over ~10 s
    # Quiet again: the flag clears after flood_flag_hold, the budget refills.
    assert not q.flooding(T0 + 1 + P.flood_flag_hold, P)
    assert all(q.admit(T0 + 10 + i * 0.05, P) for i in range(20))


def test_fields_that_appear_after_learning_are_schema_drift() -> None:
    q = DeviceQuality()
    for i in range(3):
        q.observe({"temperature": 21.0, "humidity": 40.0}, T0 + i * 30, P)
    q.observe({"temperature": 21.0, "battery": 90}, T0 + 61, P)  # the 4th message, 61 s in: learnt
    assert q.drift_fields == ("battery",)
    assert q.drift_at == T0 + 61
    q.observe({"temperature": "21.0"}, T0 + 70, P)  # a type change
    assert q.drift_fields == ("battery", "temperature:number->string")


def test_fields_seen_while_learning_are_the_schema() -> None:
    q = DeviceQuality()
    q.observe({"occupancy": True}, T0, P)
    q.observe({"battery": 80}, T0 + 10, P)  # a different message type of the same device
    q.observe({"occupancy": False, "battery": 79}, T0 + 70, P)
    q.observe({"occupancy": True}, T0 + 80, P)
    assert q.drift_fields == ()


def test_occupied_for_hours_without_corroboration_is_stuck() -> None:
    q = DeviceQuality()
    q.observe({"occupancy": True}, T0, P)
    hours = P.stuck_after
    assert not q.stuck(T0 + hours - 1, None, P)
    assert q.stuck(T0 + hours + 1, None, P)
    # Another device of the room saw someone an hour ago: corroborated.
    assert not q.stuck(T0 + hours + 1, T0 + hours - 3600, P)
    # A "no" from the sensor itself resets it.
    q.observe({"occupancy": False}, T0 + hours + 2, P)
    assert not q.stuck(T0 + 2 * hours + 3, None, P)


def test_view_reports_every_flag() -> None:
    q = DeviceQuality()
    q.observe({"presence": True}, T0, P)
    view = q.view(T0 + P.stuck_after + 1, battery=12.0, corroborated_at=None, p=P)
    assert view["stuck"] is True
    assert view["battery_low"] is True
    assert view["flooding"] is False
    assert view["schema_drift"] is None
    assert q.view(T0, battery=50.0, corroborated_at=None, p=P)["battery_low"] is False


def test_devices_with_the_same_messages_share_shape_and_schema_but_not_flags() -> None:
    """Memory per device (issue 17): one shape and one schema object for every device
    that sends the same fields; drift is still each device's own."""
    a, b = DeviceQuality(), DeviceQuality()
    for q in (a, b):
        for i in range(5):
            q.observe({"temperature": 21.0, "humidity": 40.0}, T0 + i * 30, P)
    assert a.schema is b.schema
    assert a.schema == {"temperature": "number", "humidity": "number"}
    a.observe({"temperature": 21.0, "co2": 500}, T0 + 4000, P)  # learnt by then: drift
    assert a.drift_fields == ("co2",)
    assert b.drift_fields == ()
    assert "co2" not in b.schema


def test_made_up_shapes_do_not_grow_the_shared_table_past_its_bound() -> None:
    from devices import quality

    for i in range(quality.MAX_SHARED_SHAPES + 50):
        DeviceQuality().observe({f"field{i}": 1}, T0, P)
    assert len(quality._shapes) <= quality.MAX_SHARED_SHAPES
    assert len(quality._schemas) <= quality.MAX_SHARED_SHAPES
