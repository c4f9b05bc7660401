"""An archived report is an event of its building and no room: on MQTT under
officegw/events/report/<building>/<period>, in the outbox of the webhooks of that
building (not another's), and in that building's keys' view of the event log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.fakes import running_gateway
from tests.support import wait_until

BERLIN = ZoneInfo("Europe/Berlin")
CONFIG = {
    "site": {
        "timezone": "Europe/Berlin",
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2},
            {"id": "vega", "building": "annex", "floor": 1},
        ],
    },
    "reports": {"schedule": {"periods": ["weekly"]}},
}


def test_the_report_event_goes_to_its_building_only(tmp_path: Path) -> None:
    with running_gateway(tmp_path, CONFIG) as g:
        gateway = g.gateway
        # Subscriptions to refused ports: deliveries fail and the events stay in the outbox.
        hq = gateway.create_webhook("http://127.0.0.1:9/hq", ["report"], ["hq"], "s" * 16, actor="t")
        annex = gateway.create_webhook("http://127.0.0.1:9/annex", ["report"], ["annex"], "s" * 16, actor="t")
        scheduler = gateway._report_scheduler
        scheduler.run_due()  # the schedule starts now (Tuesday 14 November 2023)
        g.clock.advance(datetime(2023, 11, 20, 6, 0, tzinfo=BERLIN).timestamp() - g.clock.now())
        scheduler.run_due()
        g.flush()

        def reports(buildings: set[str] | None) -> list[tuple[str, str]]:
            return [
                (e.data["building"], e.data["label"])
                for e in gateway.events_page(kind="report", buildings=buildings)
            ]

        assert sorted(reports(None)) == [("annex", "2023-W46"), ("hq", "2023-W46")]
        assert reports({"hq"}) == [("hq", "2023-W46")]
        topics = sorted(p.topic for p in g.transport.published if p.topic.startswith("officegw/events/"))
        assert topics == ["officegw/events/report/annex/2023-W46", "officegw/events/report/hq/2023-W46"]
        (hq_event,) = g.transport.sent("officegw/events/report/hq/2023-W46")
        assert hq_event["files"][-1]["url"] == "/v1/reports/archive/hq/2023-W46/summary.html"

        store = gateway._webhook_store
        wait_until(lambda: store.waiting(hq.id, 10), 2.0, "hq's report in its outbox")
        assert [w.data["building"] for w in store.waiting(hq.id, 10)] == ["hq"]
        assert [w.data["building"] for w in store.waiting(annex.id, 10)] == ["annex"]
