import pytest

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.codec import (
    ProtobufCodec,
    UndecodableEventError,
    UnknownEventTypeError,
    type_name,
)


def test_decodes_by_type_name() -> None:
    codec = ProtobufCodec([heartbeat_pb2.Heartbeat])
    beat = heartbeat_pb2.Heartbeat(service="catalog", sequence=7)
    decoded = codec.decode(type_name(beat), codec.encode(beat))
    assert decoded == beat


def test_unknown_type_and_garbage_are_errors() -> None:
    codec = ProtobufCodec.for_names(["shopstream.platform.v1.Heartbeat"])
    with pytest.raises(UnknownEventTypeError):
        codec.decode("shopstream.nope.v1.Nope", b"")
    with pytest.raises(UndecodableEventError):
        codec.decode("shopstream.platform.v1.Heartbeat", b"\xff\xff\xff\xff")


def test_for_names_refuses_unknown_symbols() -> None:
    with pytest.raises(UnknownEventTypeError):
        ProtobufCodec.for_names(["shopstream.nope.v1.Nope"])
