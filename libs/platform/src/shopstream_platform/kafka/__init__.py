"""Kafka plumbing: topic registry, CloudEvents headers, protobuf codec, producer, consumer, DLQ."""
