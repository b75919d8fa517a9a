"""Attribution per buyer: a batch record's impressions, screened clicks and orders applied to
the buyer's state (touches, orders, held inputs), each order credited to its last qualifying
touch (rules in domain/attribution.py) and re-decided when a touch arrives or is found invalid.

The join grace is a timer, not a wait: a click whose impression has not arrived, and a paid order
(touches may still be on their way through screening), are held in the buyer's state until the
impression comes or the grace ends; `release_due` runs the held inputs whose time has come by
the clock of the batch records (the combiner's event-time watermark, with ticks for idle
partitions), so a re-run after a crash, or a backlog read after an outage, holds and releases at
the same points of the stream.

States are changed in place and set once per buyer and record; a record applied before a restart
is skipped by the state's watermark (`wm`). The worker's inputs agent is the buyers table's only
writer (stream/agents.py), and nothing here awaits: nothing interleaves.
"""

from __future__ import annotations

import base64
import heapq
import time
from datetime import UTC, datetime
from typing import Any

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream_ads import convert
from shopstream_ads.domain import attribution as at
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain import traffic as tr
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.settings import AdsSettings
from shopstream_ads.usecases.campaign_rules import CampaignRules
from shopstream_ads.usecases.credits import CREDIT_ID, Credits
from shopstream_ads.usecases.publishing import BatchSpend, WorkerPublisher, entry_id, pack
from shopstream_platform.faust_batch import BatchedTable

ORDERS_PER_BUYER = 500
# Held inputs: [due, kind, ...]; a click: [due, "click", event_id, ScreenedClick (base64),
# click_id];
# an order: [due, "order", order_id]; a refund: [due, "refund", event_id, BuyerOrder (base64)].
DUE, HELD_KIND = 0, 1


class BuyerAttribution:
    def __init__(
        self,
        buyers: BatchedTable,
        settings: AdsSettings,
        publisher: WorkerPublisher,
        rules: CampaignRules,
        credits: Credits,
        metrics: AdsMetrics,
    ) -> None:
        self._buyers = buyers
        self._settings = settings
        self._publisher = publisher
        self._rules = rules
        self._credits = credits
        self._metrics = metrics
        # Per table partition, (due, buyer id) of its buyers holding inputs for the join grace.
        self._held: dict[int, list[tuple[float, str]]] = {}

    def held_buyers(self) -> int:
        """How many buyers wait on the release timer (logged after recovery)."""
        return sum(len(h) for h in self._held.values())

    def apply(
        self,
        buyer_id: str,
        items: list[ev.AdsInput],
        partition: int,
        offset: int,
        spend: BatchSpend,
        now: float,
    ) -> int:
        """One buyer's inputs of a batch record, impressions first, on its state (changed in
        place, set once); the number applied, 0 when the record was applied before a restart."""
        current = self._buyers.get(buyer_id, partition)
        if current is not None and current.get("wm", -1) >= offset:
            return 0  # this record was applied before a restart
        state = current if current is not None else at.new_buyer_state()
        state.pop("seen", None)  # the event ids versions before the combiner remembered
        state.setdefault("held", [])
        impressions: list[ev.AdsInput] = []
        others: list[ev.AdsInput] = []
        for item in items:
            (impressions if item.HasField("impression") else others).append(item)
        if impressions:
            self._impressions(state, impressions, spend)
            if state["held"]:
                self._release(state, now)  # clicks that waited for these impressions
        for item in others:
            if item.HasField("screened"):
                self._screened(state, item, now)
            elif item.HasField("order"):
                self._order(state, item, now)
        if others and state["held"]:
            self._release(state, now)  # orders whose named clicks joined meanwhile
        state["wm"] = offset
        self._buyers.set(buyer_id, state, partition)
        if state["held"]:
            self.schedule(buyer_id, partition, state)
        return len(items)

    # --- per buyer ------------------------------------------------------------------------

    def _impressions(
        self, state: dict[str, Any], items: list[ev.AdsInput], spend: BatchSpend
    ) -> None:
        """A batch of one buyer's impressions: each new one a view touch and a charge in the
        batch's spend lines; one sort of the touches, one reconsideration of the orders."""
        known: set[str] = set()  # this call's own
        new: list[list[Any]] = []
        placements = spend.placements
        rules_of = self._rules.of
        touches = state["touches"]
        # Impressions mostly come in time order: one later than every touch known is new
        # without a search (the per-impression loop is most of the drain's time).
        latest = touches[-1][at.AT] if touches else float("-inf")
        for item in items:
            imp = item.impression
            impression_id = imp.impression_id
            ts = imp.at
            when = ts.seconds + ts.nanos / 1e9
            if impression_id in known or (
                when <= latest and at.has_touch_at(state, at.VIEW, impression_id, when)
            ):
                continue  # the same impression re-sent under a new event id
            known.add(impression_id)
            campaign_id = imp.campaign_id
            spend.add(campaign_id, when, imp.clearing_price.amount_minor)
            placements[imp.placement or "unknown"] += 1
            # Charged and counted as served either way; a touch only where the campaign
            # credits views, and, with an engaged-view rule, only one watched long enough.
            _, view_s, engaged_ms = rules_of(campaign_id)
            if view_s and imp.watched_ms >= engaged_ms:
                new.append([at.VIEW, impression_id, campaign_id, when, ""])
            else:
                known.add(impression_id)
        if not new:
            return
        at.add_touches(state, new, self._settings.attribution)
        if state["orders"]:
            windows = self._rules.windows
            self._reconsider(
                state,
                min(t[at.AT] for t in new),
                items[0].event_id,
                views=True,
                window_s=max(windows(t[at.CAMPAIGN])[1] for t in new),
            )

    def _screened(self, state: dict[str, Any], item: ev.AdsInput, now: float) -> None:
        if not at.first_time(state, item.event_id):
            return  # the same screened click re-sent
        screened = item.screened
        click = screened.click
        if (
            not screened.retroactive
            and not screened.flagged
            and click.impression_id
            and not at.has_touch(state, at.VIEW, click.impression_id)
            and screened.HasField("observed_at")
        ):
            # The impression comes on another topic: hold the click for the join grace.
            due = convert.seconds(screened.observed_at) + self._settings.attribution.join_grace_s
            if due > now:
                state["held"].append([due, "click", item.event_id, pack(screened), click.click_id])
                return
        self._click(state, screened, item.event_id)

    def _click(self, state: dict[str, Any], screened: ev.ScreenedClick, cause: str) -> None:
        click = screened.click
        when = convert.seconds(click.at)
        rules = self._settings.traffic
        if screened.retroactive:
            forgotten = at.forget_touch(state, at.CLICK, click.click_id)
            if forgotten:
                self._publisher.void(click, screened.flagged, screened.detail, cause)
                self._redecide_credited_to(state, forgotten, cause)
            elif self._unhold_click(state, click.click_id):
                # Still waiting for its impression, so never billed: flagged, nothing to reverse.
                self._publisher.flag(click, screened.flagged, screened.detail, cause)
            return
        state["click_times"], burst = tr.buyer_burst(state["click_times"], when, rules)
        if screened.flagged:
            forgotten = at.forget_touch(state, at.VIEW, click.impression_id)
            self._publisher.flag(click, screened.flagged, screened.detail, cause)
            self._redecide_credited_to(state, forgotten, cause)
            return
        reason, detail = 0, ""
        if at.has_touch(state, at.CLICK, click.click_id):
            reason, detail = (
                tr.DUPLICATE_CLICK_ID,
                f"click id {click.click_id} seen before for this buyer",
            )
        elif burst:
            reason, detail = tr.BUYER_BURST, burst
        elif not click.impression_id or not at.has_touch(state, at.VIEW, click.impression_id):
            reason = tr.NO_IMPRESSION
            detail = f"no impression {click.impression_id or '(none given)'} before this click"
        if reason:
            forgotten = at.forget_touch(state, at.VIEW, click.impression_id)
            self._publisher.flag(click, reason, detail, cause)
            self._redecide_credited_to(state, forgotten, cause)
            if reason == tr.BUYER_BURST:
                # The burst shows only now: the buyer's earlier clicks in it are invalid too.
                horizon = when - rules.burst_window_s
                for t in [
                    t for t in state["touches"] if t[at.KIND] == at.CLICK and t[at.AT] > horizon
                ]:
                    forgotten = at.forget_touch(state, at.CLICK, t[at.TOUCH_ID])
                    self._redecide_credited_to(state, forgotten, cause)
                    earlier = ads_pb2.Click(
                        click_id=t[at.TOUCH_ID],
                        buyer_id=click.buyer_id,
                        campaign_id=t[at.CAMPAIGN],
                    )
                    earlier.at.FromDatetime(datetime.fromtimestamp(t[at.AT], UTC))
                    self._publisher.void(earlier, reason, detail, cause)
            return
        amount = click.clearing_price if click.HasField("clearing_price") else None
        self._publisher.ledger(
            click.campaign_id, lg.CLICK, entry_id("click", click.click_id), when, amount
        )
        at.remember_touch(
            state,
            at.CLICK,
            click.click_id,
            click.campaign_id,
            when,
            self._settings.attribution,
            via=click.impression_id,
        )
        self._reconsider(state, when, cause, window_s=self._rules.windows(click.campaign_id)[0])
        self._metrics.clicks.labels(click.placement or "unknown").inc()

    def _order(self, state: dict[str, Any], item: ev.AdsInput, now: float) -> None:
        order = item.order
        orders: dict[str, Any] = state["orders"]
        if order.refund:
            if not at.first_time(state, item.event_id):
                return  # the same refund re-sent
            facts = orders.get(order.order_id)
            if facts is not None and facts.get("held"):
                # Its order waits for the grace: the refund follows it, in order.
                state["held"].append([facts["held"], "refund", item.event_id, pack(order)])
                return
            self._refund(state, order, item.event_id)
            return
        if order.order_id in orders:
            return  # the same paid order re-sent
        facts = {
            "buyer": order.buyer_id,
            "at": convert.seconds(order.at),
            "consent": order.tracking_consent,
            "clicks": list(order.ad_click_ids),
            "amount": order.amount.amount_minor,
            "currency": order.amount.currency,
            "creators": list(order.creator_ids),
            "credit": None,
        }
        orders[order.order_id] = facts
        for stale in list(orders)[:-ORDERS_PER_BUYER]:
            del orders[stale]
        due = 0.0
        if order.HasField("observed_at") and self._awaits_click(state, facts):
            due = convert.seconds(order.observed_at) + self._settings.attribution.join_grace_s
        if due > now:
            # A click the order names is still in the screening pipeline: the grace lets it
            # join (deciding now would credit a view, then move the credit when it comes).
            facts["held"] = due
            state["held"].append([due, "order", order.order_id])
            return
        self._decide(state, order.order_id, item.event_id, arrival=True)

    @staticmethod
    def _awaits_click(state: dict[str, Any], facts: dict[str, Any]) -> bool:
        """The order names a click this buyer's state does not know yet. An order that names
        none, or only known clicks, is decided at once: holding it would only add the grace to
        its lag (a touch that still comes later re-decides it, as for any order)."""
        return any(not at.has_touch(state, at.CLICK, c) for c in facts["clicks"])

    def _refund(self, state: dict[str, Any], order: ev.BuyerOrder, cause: str) -> None:
        facts = state["orders"].get(order.order_id)
        if not facts:
            return
        facts["refunded"] = facts.get("refunded", 0) + order.amount.amount_minor
        if not facts["credit"]:
            return  # a credit given later is net of it
        self._credits.publish(
            order.order_id,
            facts,
            facts["credit"],
            cause,
            kind=lg.REFUND,
            amount=order.amount.amount_minor,
        )

    # --- the join grace ---------------------------------------------------------------------

    def _release(self, state: dict[str, Any], now: float) -> None:
        """Run the held inputs whose time has come, in the order they arrived: a click once its
        impression is known or its grace is over, an order once every click it names is known
        or its grace is over, a refund right after its order. The only place held inputs
        leave; a pass that joined a click runs again for the orders held ahead of it."""
        while self._release_pass(state, now):
            pass

    def _release_pass(self, state: dict[str, Any], now: float) -> bool:
        kept: list[list[Any]] = []
        clicked = False
        for held in state["held"]:
            due, kind = held[DUE], held[HELD_KIND]
            if kind == "click":
                screened = ev.ScreenedClick.FromString(base64.b64decode(held[3]))
                if due <= now or at.has_touch(state, at.VIEW, screened.click.impression_id):
                    self._click(state, screened, held[2])
                    clicked = True
                    continue
            elif kind == "order":
                facts = state["orders"].get(held[2])
                if facts is None:
                    continue  # trimmed away meanwhile
                if due <= now or not self._awaits_click(state, facts):
                    facts.pop("held", None)
                    self._decide(state, held[2], f"held:{held[2]}", arrival=True)
                    continue
            elif kind == "refund":
                order = ev.BuyerOrder.FromString(base64.b64decode(held[3]))
                facts = state["orders"].get(order.order_id)
                if facts is None or not facts.get("held"):
                    self._refund(state, order, held[2])
                    continue
            kept.append(held)
        state["held"] = kept
        return clicked and any(h[HELD_KIND] == "order" for h in kept)

    @staticmethod
    def _unhold_click(state: dict[str, Any], click_id: str) -> bool:
        held = state["held"]
        kept = [h for h in held if not (h[HELD_KIND] == "click" and h[4] == click_id)]
        state["held"] = kept
        return len(kept) != len(held)

    def schedule(self, buyer_id: str, partition: int, state: dict[str, Any]) -> None:
        heapq.heappush(
            self._held.setdefault(partition, []), (min(h[DUE] for h in state["held"]), buyer_id)
        )

    def release_due(self, partition: int, offset: int, now: float) -> int:
        """The partition's buyers whose held inputs are due by this record's clock (after the
        record's own inputs). Their states take the record's offset as watermark: a re-run
        from before it finds them released, or releases them here again, the same way."""
        held = self._held.get(partition)
        released = 0
        later: list[tuple[float, str]] = []
        while held and held[0][0] <= now:
            due, buyer_id = heapq.heappop(held)
            state = self._buyers.get(buyer_id, partition)
            if state is None or not state.get("held"):
                continue  # released already (a buyer is scheduled once per hold)
            if state.get("wm", -1) > offset:
                # A re-run behind the state restored: it was released at a later record, or
                # will be; not before the records it has seen are passed.
                later.append((due, buyer_id))
                continue
            self._release(state, now)
            state["wm"] = offset
            self._buyers.set(buyer_id, state, partition)
            if state["held"]:
                self.schedule(buyer_id, partition, state)
            released += 1
        for entry in later:
            heapq.heappush(self._held.setdefault(partition, []), entry)
        return released

    # --- credit decisions ---------------------------------------------------------------

    def _decide(
        self, state: dict[str, Any], order_id: str, cause: str, *, arrival: bool = False
    ) -> None:
        """(Re)decide an order's credit from the touches known now; publish a change of credit.

        Run when the order arrives and again when a touch arrives that could take its credit
        (touches and orders come on different topics, so a touch can arrive after the order it
        precedes): the earlier credit is then withdrawn and the new one given.
        """
        facts = state["orders"][order_id]
        decision = at.decide(
            state,
            at.OrderFacts(order_id, facts["at"], facts["consent"], frozenset(facts["clicks"])),
            self._settings.attribution,
            self._rules.windows,
        )
        for fast in decision.too_fast:
            forgotten = at.forget_touch(state, at.CLICK, fast.touch_id)
            click = ads_pb2.Click(
                click_id=fast.touch_id, buyer_id=facts["buyer"], campaign_id=fast.campaign_id
            )
            click.at.FromDatetime(datetime.fromtimestamp(fast.touched_at, UTC))
            self._publisher.void(
                click,
                tr.IMPOSSIBLE_TIMING,
                f"paid order {order_id} {facts['at'] - fast.touched_at:.1f} s after the click",
                f"{cause}:{order_id}",
            )
            # Another order may have been credited to it already (orders arrive in any order).
            self._redecide_credited_to(state, forgotten, f"{cause}:{order_id}", order_id)
        c = decision.credit
        new = [c.campaign_id, c.kind, c.touch_id, c.touched_at] if c is not None else None
        old = facts["credit"]
        if new == (old[:CREDIT_ID] if old is not None else None):
            if new is None and arrival:
                self._metrics.unattributed.inc()
            return
        # A credit stands at the order's amount less what was refunded so far (refunds booked
        # before it or on it): a moved credit takes the refunds along, so an order's net credit
        # is the same whichever came first, a refund or the touch that moved the credit.
        net = max(0, facts["amount"] - facts.get("refunded", 0))
        if old is not None:
            self._credits.publish(
                order_id, facts, old, cause, kind=lg.CONVERSION_WITHDRAWN, amount=net
            )
        facts["credit"] = new
        if new is not None:
            new.append(self._credits.next_id(order_id, facts, c.touch_id if c else ""))
            self._credits.publish(order_id, facts, new, cause, kind=lg.CONVERSION, amount=net)
            if arrival:
                # The worker's lag: paid to first credit. A credit moved later by a touch that
                # arrived late is the data's lateness, counted in the withdrawals instead.
                self._metrics.lag.observe(max(0.0, time.time() - facts["at"]))

    def _redecide_credited_to(
        self, state: dict[str, Any], touch_ids: list[str], cause: str, skip: str = ""
    ) -> None:
        """Touches were forgotten (found invalid): the orders credited to them are decided
        again, so none stays credited to an invalid touch, whichever order its inputs came in."""
        if not touch_ids:
            return
        gone = set(touch_ids)
        for order_id, facts in list(state["orders"].items()):
            if order_id != skip and facts and facts["credit"] and facts["credit"][2] in gone:
                self._decide(state, order_id, cause)

    def _reconsider(
        self,
        state: dict[str, Any],
        touch_at: float,
        cause: str,
        *,
        window_s: float,
        views: bool = False,
    ) -> None:
        """A touch arrived: orders it precedes within its campaign's window (`window_s`) may owe
        it their credit. `views`: the new touches are views, which never take a click's credit
        and never count for a buyer without consent, so only orders credited to a view or to
        nothing can move."""
        window = window_s
        for order_id, facts in list(state["orders"].items()):
            # A held order is decided when its grace ends, with every touch known by then.
            if facts is None or "held" in facts or not 0 <= facts["at"] - touch_at <= window:
                continue
            if views and (
                not facts["consent"] or (facts["credit"] and facts["credit"][1] == at.CLICK)
            ):
                continue
            self._decide(state, order_id, cause)
