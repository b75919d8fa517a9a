"""The attribution worker's topics (protos/topics.yaml has their contracts)."""

from __future__ import annotations

from shopstream_ads.campaigns import CAMPAIGNS_TOPIC

IMPRESSIONS_TOPIC = "ads.impressions.v1"
CLICKS_TOPIC = "ads.clicks.v1"
ORDERS_TOPIC = "commerce.orders.v1"
SCREENED_TOPIC = "ads.screened-clicks.v1"
# Written by versions before the combiner (orders re-keyed by buyer); still read, so records
# left there by an upgrade are not lost.
LEGACY_BUYER_ORDERS_TOPIC = "ads.buyer-orders.v1"
INPUT_BATCHES_TOPIC = "ads.input-batches.v1"
LEDGER_TOPIC = "ads.ledger.v1"
INVALID_TOPIC = "ads.invalid-traffic.v1"
ATTRIBUTIONS_TOPIC = "ads.attributions.v1"

# What the combiner reads; everything else is written by the worker.
SOURCE_TOPICS = [
    IMPRESSIONS_TOPIC,
    CLICKS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
    LEGACY_BUYER_ORDERS_TOPIC,
]
TOPICS = [
    *SOURCE_TOPICS,
    INPUT_BATCHES_TOPIC,
    LEDGER_TOPIC,
    INVALID_TOPIC,
    ATTRIBUTIONS_TOPIC,
    CAMPAIGNS_TOPIC,
]
# The devices, buyers and ledgers tables' partitions (and ads.input-batches.v1's).
TABLE_PARTITIONS = 6
