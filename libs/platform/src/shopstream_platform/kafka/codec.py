"""Protobuf decoding by `ce_type`: the header names the message, the registry finds its class."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import symbol_database
from google.protobuf.message import DecodeError, Message


class UnknownEventTypeError(ValueError):
    """The ce_type names no message this consumer accepts."""


class UndecodableEventError(ValueError):
    """The value is not a valid encoding of the message its ce_type names."""


def type_name(message: Message | type[Message]) -> str:
    """The ce_type of a message: its protobuf full name, e.g. shopstream.platform.v1.Heartbeat."""
    return message.DESCRIPTOR.full_name


class ProtobufCodec:
    """Maps ce_type to message classes for the types a consumer accepts."""

    def __init__(self, types: Iterable[type[Message]]) -> None:
        self._types = {type_name(t): t for t in types}

    @classmethod
    def for_names(cls, names: Iterable[str]) -> ProtobufCodec:
        """Build from full names; the generated modules must have been imported."""
        db = symbol_database.Default()
        classes = []
        for name in names:
            try:
                classes.append(db.GetSymbol(name))
            except KeyError:
                raise UnknownEventTypeError(f"no generated class for {name!r}") from None
        return cls(classes)

    @property
    def type_names(self) -> frozenset[str]:
        return frozenset(self._types)

    def decode(self, ce_type: str, value: bytes | None) -> Message:
        cls = self._types.get(ce_type)
        if cls is None:
            raise UnknownEventTypeError(f"ce_type {ce_type!r} is not accepted here")
        message = cls()
        try:
            message.ParseFromString(value or b"")
        except DecodeError as exc:
            raise UndecodableEventError(f"cannot decode {ce_type}: {exc}") from None
        return message

    @staticmethod
    def encode(message: Message) -> bytes:
        return message.SerializeToString()


def import_all_messages() -> int:
    """Import every generated *_pb2 module so any shopstream ce_type can be decoded by name.

    Tools that read arbitrary topics (the CLI's tail, DLQ inspection) need this; services import
    only the types they handle. Returns the number of modules imported.
    """
    import importlib
    import pkgutil

    import shopstream

    count = 0
    for info in pkgutil.walk_packages(shopstream.__path__, prefix="shopstream."):
        if info.name.endswith("_pb2"):
            importlib.import_module(info.name)
            count += 1
    return count
