"""The topics creator-score reads and writes (names as in protos/topics.yaml)."""

from __future__ import annotations

PROFILES_TOPIC = "social.creator-profiles.v1"
CONTENT_TOPIC = "social.content-stats.v1"
ORDERS_TOPIC = "commerce.orders.v1"
LIVE_TOPIC = "commerce.live.v1"
ATTRIBUTIONS_TOPIC = "ads.attributions.v1"
# No longer written; the combiner reads what earlier versions re-keyed onto it.
LEGACY_INPUTS_TOPIC = "creators.inputs.v1"
# The combiner's output, the applier's only input; co-partitioned with the creators table.
INPUT_BATCHES_TOPIC = "creators.input-batches.v1"
SCORES_TOPIC = "creators.scores.v1"

# What the combiner consumes.
SOURCE_TOPICS = (
    PROFILES_TOPIC,
    CONTENT_TOPIC,
    ORDERS_TOPIC,
    LIVE_TOPIC,
    ATTRIBUTIONS_TOPIC,
    LEGACY_INPUTS_TOPIC,
)
# Every topic the service needs to exist.
INPUT_TOPICS = (*SOURCE_TOPICS, INPUT_BATCHES_TOPIC)
TABLE_PARTITIONS = 6
