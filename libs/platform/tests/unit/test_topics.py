from google.protobuf import symbol_database

from shopstream_platform.kafka.admin import topic_config
from shopstream_platform.kafka.codec import import_all_messages
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings


def test_registry_names_follow_the_convention_and_types_exist() -> None:
    registry = load_registry()
    assert len(registry) >= 1
    assert import_all_messages() >= 1
    db = symbol_database.Default()
    for spec in registry:
        domain, entity, version = spec.name.split(".")
        assert domain and entity and version == "v1", spec.name
        assert spec.partitions >= 1 and spec.owner and spec.description
        for value in spec.values:
            db.GetSymbol(value)  # raises KeyError when the proto type does not exist


def test_dlq_twin_and_explicit_topic_config() -> None:
    spec = load_registry().get("platform.heartbeats.v1")
    assert spec.dlq.name == "platform.heartbeats.v1.dlq"
    assert spec.dlq.partitions == spec.partitions
    rf, config = topic_config(spec, KafkaSettings(replication_factor=3, min_insync_replicas=2))
    assert rf == 3
    assert config["min.insync.replicas"] == "2"
    assert config["retention.ms"] == str(spec.retention_ms)
