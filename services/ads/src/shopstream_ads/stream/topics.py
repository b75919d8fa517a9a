"""The attribution stream's layout: what the combiner reads.

Topic names and the tables' partitions come from shopstream_ads.topics (each name checked
against protos/topics.yaml); they are re-exported here for bench/ads_attribution_bench.py,
which reads them from this module.
"""

from __future__ import annotations

from shopstream_ads.topics import (
    ATTRIBUTIONS_TOPIC,
    CLICKS_TOPIC,
    IMPRESSIONS_TOPIC,
    INPUT_BATCHES_TOPIC,
    INVALID_TOPIC,
    LEDGER_TOPIC,
    LEGACY_BUYER_ORDERS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
    TABLE_PARTITIONS,
    TOPICS,
)

__all__ = [
    "ATTRIBUTIONS_TOPIC",
    "CLICKS_TOPIC",
    "IMPRESSIONS_TOPIC",
    "INPUT_BATCHES_TOPIC",
    "INVALID_TOPIC",
    "LEDGER_TOPIC",
    "LEGACY_BUYER_ORDERS_TOPIC",
    "ORDERS_TOPIC",
    "SCREENED_TOPIC",
    "SOURCE_TOPICS",
    "TABLE_PARTITIONS",
    "TOPICS",
]

# What the combiner reads; everything else is written by the worker or the API.
SOURCE_TOPICS = [
    IMPRESSIONS_TOPIC,
    CLICKS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
    LEGACY_BUYER_ORDERS_TOPIC,
]
