"""Screening per install: a device's clicks checked for bursts and repeats (domain/traffic.py),
each passed on or flagged as a `ScreenedClick`, re-keyed by buyer for the buyer's attribution.

The edge keys clicks by install (device hint), so one device's clicks meet here whichever buyer
ids they carry. The screened clicks go back through the combiner (ads.screened-clicks.v1) to
the buyers' partitions.
"""

from __future__ import annotations

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads import convert
from shopstream_ads.domain import traffic as tr
from shopstream_ads.settings import AdsSettings
from shopstream_ads.topics import SCREENED_TOPIC
from shopstream_ads.usecases.publishing import WorkerPublisher
from shopstream_platform.faust_batch import BatchedTable


class Screening:
    def __init__(
        self, devices: BatchedTable, settings: AdsSettings, publisher: WorkerPublisher
    ) -> None:
        self._devices = devices
        self._settings = settings
        self._publisher = publisher

    def screen(
        self, install: str, clicks: list[ev.AdsInput], partition: int, offset: int, now: float
    ) -> int:
        """One install's clicks of a batch record, on its device state (changed in place, set
        once); the number applied, 0 when the record was applied before a restart."""
        current = self._devices.get(install, partition)
        if current is not None and current.get("wm", -1) >= offset:
            return 0  # this record was applied before a restart
        state = current if current is not None else tr.new_device_state()
        for item in clicks:
            click = item.click
            if tr.seen_event(state, item.event_id):
                continue  # the same click event re-sent upstream
            facts = tr.ClickFacts(
                click.click_id, click.buyer_id, click.campaign_id, convert.seconds(click.at)
            )
            for v in tr.screen_device(state, install, facts, item.event_id, self._settings.traffic):
                screened = ev.ScreenedClick(
                    flagged=ev.InvalidTrafficReason.ValueType(v.reason),
                    detail=v.detail,
                    retroactive=v.retroactive,
                    worker=self._settings.faust_app_id,
                )
                screened.observed_at.FromNanoseconds(int(now * 1e9))
                if v.retroactive:
                    screened.click.click_id = v.click_id
                    screened.click.buyer_id = v.buyer_id
                    screened.click.campaign_id = v.campaign_id
                    screened.click.install_id = click.install_id
                    screened.click.at.CopyFrom(click.at)
                else:
                    screened.click.CopyFrom(click)
                self._publisher.emit(
                    SCREENED_TOPIC,
                    v.buyer_id,
                    screened,
                    f"{item.event_id}:screen:{v.click_id}",
                    facts.at,
                )
        state["wm"] = offset
        self._devices.set(install, state, partition)
        return len(clicks)
