"""Invalid-traffic rules over the small state kept per install and per buyer.

States are plain JSON-able dicts because they live in Faust tables (changelogged as JSON).
Times are event times in epoch seconds, so a replay judges every click exactly as the first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shopstream_ads.settings import TrafficSettings

State = dict[str, Any]

# Reasons, as shopstream.ads.v1.InvalidTrafficReason values.
DEVICE_BURST = 1
BUYER_BURST = 2
NO_IMPRESSION = 3
DUPLICATE_CLICK_ID = 4
IMPOSSIBLE_TIMING = 5

REASON_NAMES = {
    DEVICE_BURST: "device_burst",
    BUYER_BURST: "buyer_burst",
    NO_IMPRESSION: "no_impression",
    DUPLICATE_CLICK_ID: "duplicate_click_id",
    IMPOSSIBLE_TIMING: "impossible_timing",
}

# The MRC IVT guidelines' split: general IVT is caught by routine, activity-based filtering
# (frequency per device or buyer, repeated ids); sophisticated IVT needs analysis of the
# click's story (a click no impression was served for, a click-to-purchase no person makes).
GIVT, SIVT = "givt", "sivt"
CATEGORY = {
    DEVICE_BURST: GIVT,
    BUYER_BURST: GIVT,
    DUPLICATE_CLICK_ID: GIVT,
    NO_IMPRESSION: SIVT,
    IMPOSSIBLE_TIMING: SIVT,
}


@dataclass(frozen=True)
class ClickFacts:
    click_id: str
    buyer_id: str
    campaign_id: str
    at: float


@dataclass(frozen=True)
class Verdict:
    click_id: str
    buyer_id: str
    campaign_id: str
    reason: int  # 0: valid
    detail: str
    # The click passed earlier and is flagged now that its burst showed: undo its charge.
    retroactive: bool = False


def new_device_state() -> State:
    # recent: [at, click_id, buyer_id, campaign_id, flagged] inside the burst window;
    # ids: [click_id, ce_id] of clicks seen (the event id tells a redelivery from a duplicate).
    return {"recent": [], "ids": []}


def seen_event(state: State, event_id: str) -> bool:
    return any(pair[1] == event_id for pair in state["ids"])


def screen_device(
    state: State, install_id: str, click: ClickFacts, event_id: str, rules: TrafficSettings
) -> list[Verdict]:
    """The verdict on `click` from its install's history, first, then any earlier clicks of the
    same burst that passed before the burst became visible."""
    if any(pair[0] == click.click_id for pair in state["ids"]):
        return [
            Verdict(
                click.click_id,
                click.buyer_id,
                click.campaign_id,
                DUPLICATE_CLICK_ID,
                f"click id {click.click_id} seen before from install {install_id}",
            )
        ]
    state["ids"].append([click.click_id, event_id])
    del state["ids"][: -rules.remembered_click_ids]
    horizon = click.at - rules.burst_window_s
    recent = [r for r in state["recent"] if r[0] > horizon]
    recent.append([click.at, click.click_id, click.buyer_id, click.campaign_id, False])
    state["recent"] = recent
    if len(recent) <= rules.device_burst_limit:
        return [Verdict(click.click_id, click.buyer_id, click.campaign_id, 0, "")]
    detail = (
        f"{len(recent)} clicks in {rules.burst_window_s:g} s from install {install_id} "
        f"(limit {rules.device_burst_limit})"
    )
    verdicts = [Verdict(click.click_id, click.buyer_id, click.campaign_id, DEVICE_BURST, detail)]
    for r in recent:
        if not r[4] and r[1] != click.click_id:
            verdicts.append(Verdict(r[1], r[2], r[3], DEVICE_BURST, detail, retroactive=True))
        r[4] = True
    return verdicts


def buyer_burst(
    click_times: list[float], at: float, rules: TrafficSettings
) -> tuple[list[float], str]:
    """The buyer's click times inside the window (this click included) and, when over the
    limit, why this click is a burst."""
    recent = [t for t in click_times if t > at - rules.burst_window_s]
    recent.append(at)
    if len(recent) > rules.buyer_burst_limit:
        return recent, (
            f"{len(recent)} clicks in {rules.burst_window_s:g} s from one buyer "
            f"(limit {rules.buyer_burst_limit})"
        )
    return recent, ""
