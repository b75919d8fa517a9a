"""Every topic ads reads or writes, by its name in the topic registry (protos/topics.yaml).

Each name is looked up in the registry the protos package ships (shopstream_platform's
`load_registry`) when this module is imported: a topic renamed or dropped there stops the
service, its combiner and its tests at import instead of sending records to a topic nobody
reads. The other modules take their names from here, so each name is written once.
"""

from __future__ import annotations

from shopstream_platform.kafka.topics import load_registry


def _registered(name: str) -> str:
    """`name` as the registry spells it; KeyError when the registry has no such topic."""
    return load_registry().get(name).name


# Written by the API (usecases/campaigns.py) and by the ledger agent (budget exhausted).
CAMPAIGNS_TOPIC = _registered("ads.campaigns.v1")
# Written by the app's edge or the API (usecases/traffic.py); read by the combiner.
IMPRESSIONS_TOPIC = _registered("ads.impressions.v1")
CLICKS_TOPIC = _registered("ads.clicks.v1")
# commerce's orders: paid and refunded orders are the conversions (read by the combiner).
ORDERS_TOPIC = _registered("commerce.orders.v1")
# The worker's internal streams: screened clicks back to the combiner, the combiner's batches,
# spend and conversion lines to the ledger agent.
SCREENED_TOPIC = _registered("ads.screened-clicks.v1")
INPUT_BATCHES_TOPIC = _registered("ads.input-batches.v1")
LEDGER_TOPIC = _registered("ads.ledger.v1")
# Written by versions before the combiner (orders re-keyed by buyer); still read, so records
# left there by an upgrade are not lost.
LEGACY_BUYER_ORDERS_TOPIC = _registered("ads.buyer-orders.v1")
# The worker's public outputs; this service's own consumers read them back for the reports
# (usecases/conversions.py, usecases/invalid_traffic.py).
INVALID_TOPIC = _registered("ads.invalid-traffic.v1")
ATTRIBUTIONS_TOPIC = _registered("ads.attributions.v1")

# Every topic the service needs to exist (declared at start, wiring.py).
TOPICS = [
    IMPRESSIONS_TOPIC,
    CLICKS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
    LEGACY_BUYER_ORDERS_TOPIC,
    INPUT_BATCHES_TOPIC,
    LEDGER_TOPIC,
    INVALID_TOPIC,
    ATTRIBUTIONS_TOPIC,
    CAMPAIGNS_TOPIC,
]
# The devices, buyers and ledgers tables' partitions, and ads.input-batches.v1's: partition n of
# the combiner's output holds the keys of the tables' partition n. Not read from the registry on
# purpose: the tables' stores are laid out by it, so a change is a migration, not an edit.
TABLE_PARTITIONS = 6
