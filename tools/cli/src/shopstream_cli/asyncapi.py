"""`shopstream topics asyncapi`: the topic registry and protobuf descriptors as AsyncAPI 3.0.

The document is generated, never edited: docs/asyncapi.yaml is this module's output, and CI
regenerates it and fails when the committed copy differs. So the output is deterministic — no
timestamps, channels in registry order, schemas sorted by name, examples built from fixed values.

Payload schemas describe the proto3 JSON mapping of each message with the proto field names
(what `MessageToDict(preserving_proto_field_name=True)` and `shopstream topics tail` print);
on the wire the value is binary protobuf, named by the ce_type header.

Internal topics (`internal: true` in the registry) are included, tagged `internal` and marked
`x-internal: true`: operators and DLQ tooling need to decode them, and one document then lists
every topic on the broker — but subscribers must not depend on them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import yaml
from google.protobuf import json_format, symbol_database
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from shopstream_cli.output import console, fail
from shopstream_platform.kafka import dlq
from shopstream_platform.kafka.cloudevents import CONTENT_TYPE, SPECVERSION
from shopstream_platform.kafka.codec import import_all_messages
from shopstream_platform.kafka.topics import TopicRegistry, TopicSpec, load_registry

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
ROOT = Path(__file__).resolve().parents[4]
DEFAULT_PATH = ROOT / "docs" / "asyncapi.yaml"
EXAMPLE_TIME = "2025-01-15T12:00:00Z"
HEADERS_SCHEMA = "CloudEventsHeaders"
DLQ_HEADERS_SCHEMA = "DeadLetterHeaders"

_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
_UINT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_FLOATS = {FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float"}

# Well-known types have their own JSON form in the proto3 mapping (not an object of fields).
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {"type": "object", "required": ["@type"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "uint32"},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "uint64"},
    "google.protobuf.FloatValue": {"type": ["number", "null"], "format": "float"},
    "google.protobuf.DoubleValue": {"type": ["number", "null"], "format": "double"},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class SchemaBuilder:
    """JSON schemas for protobuf messages and enums, each registered once under its full name."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def message(self, desc: Descriptor) -> dict[str, Any]:
        """A reference to the message's schema, building it (and what it uses) on first sight."""
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        if desc.full_name not in self.schemas:
            schema: dict[str, Any] = {
                "type": "object",
                "title": desc.name,
                "x-protobuf-message": desc.full_name,
                "x-protobuf-file": desc.file.name,
            }
            # Registered before the fields are walked, so a recursive message ends in a $ref.
            self.schemas[desc.full_name] = schema
            schema["properties"] = {f.name: self._field(f) for f in desc.fields}
        return _ref(desc.full_name)

    def enum(self, desc: EnumDescriptor) -> dict[str, Any]:
        if desc.full_name not in self.schemas:
            self.schemas[desc.full_name] = {
                "type": "string",
                "title": desc.name,
                "enum": [v.name for v in desc.values],
                "x-protobuf-enum": desc.full_name,
                "x-protobuf-enum-numbers": {v.name: v.number for v in desc.values},
            }
        return _ref(desc.full_name)

    def _field(self, field: FieldDescriptor) -> dict[str, Any]:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self._single(entry.fields_by_name["value"]),
                "x-protobuf-map-key": _scalar_name(entry.fields_by_name["key"]),
            }
        elif field.is_repeated:
            schema = {"type": "array", "items": self._single(field)}
        else:
            schema = self._single(field)
        if "$ref" in schema:
            # JSON Schema draft-07 ignores siblings of $ref; allOf keeps the annotations.
            schema = {"allOf": [schema]}
        schema["x-protobuf-field-number"] = field.number
        oneof = field.containing_oneof
        if oneof is not None and not _synthetic(oneof.name, field):
            schema["x-protobuf-oneof"] = oneof.name
        return schema

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        kind = field.type
        if kind in _INT32:
            return {"type": "integer", "format": "int32"}
        if kind in _UINT32:
            return {"type": "integer", "format": "uint32", "minimum": 0}
        if kind in _INT64:
            # The proto3 JSON mapping writes 64-bit integers as strings (JavaScript precision).
            return {"type": "string", "format": "int64"}
        if kind in _UINT64:
            return {"type": "string", "format": "uint64"}
        if kind in _FLOATS:
            return {"type": "number", "format": _FLOATS[kind]}
        if kind == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {"type": "string"}


def _synthetic(oneof_name: str, field: FieldDescriptor) -> bool:
    """proto3 `optional` wraps a field in a one-field oneof named `_<field>`: not a real choice."""
    return oneof_name == f"_{field.name}"


def _scalar_name(field: FieldDescriptor) -> str:
    names = {
        getattr(FieldDescriptor, attr): attr.removeprefix("TYPE_").lower()
        for attr in dir(FieldDescriptor)
        if attr.startswith("TYPE_")
    }
    return names.get(field.type, "string")


# --- examples -----------------------------------------------------------------------------------

_STRINGS = {
    "currency": "GBP",
    "country": "GB",
    "day": "2025-01-15",
    "placement": "feed",
    "placements": "feed",
    "title": "Wireless earbuds",
    "name": "Spring launch",
    "display_name": "Aurora Beauty",
    "description": "Noise-cancelling earbuds with a 30-hour battery.",
    "brand": "Acme",
    "code": "BANNED_TERM",
    "category_id": "beauty",
    "categories": "beauty",
    "declared_categories": "beauty",
    "mcn_agency": "Northstar MCN",
    "provider": "sandbox",
    "tracking_number": "TRK123456789",
    "service": "catalog",
    "flags": "FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT",
    "reason": "customer request",
    "message": "contains a banned term",
    "detail": "card declined by issuer",
}
_INTS = {
    "quantity": 2,
    "refunded_quantity": 0,
    "version": 3,
    "sequence": 42,
    "followers": 12000,
    "views": 5400,
    "total_views": 5400,
    "likes": 320,
    "comments": 41,
    "shares": 12,
    "current_viewers": 250,
    "peak_viewers": 410,
    "orders": 12,
    "rank": 1,
    "window_days": 30,
    "on_hand": 40,
    "reserved": 2,
    "available": 38,
    "tier": 5,
}


# Money fields worth the example line's quantity (2) times its unit price (19.99).
_TWO_UNITS = {"line_total", "total", "gmv", "amount"}

# Map fields: one plausible entry each (the key's name carries no meaning of its own).
_MAPS: dict[str, tuple[Any, Any]] = {
    "attributes": ("colour", "red"),
    "variant_attributes": ("colour", "red"),
    "by_category": ("beauty", 1999),
    "stock": ("warehouse-1", 40),
}


def _example_string(name: str) -> str:
    if name in _STRINGS:
        return _STRINGS[name]
    if name.endswith("_version"):
        return "v1"
    for suffix in ("_ids", "_id"):
        if name.endswith(suffix):
            return name.removesuffix(suffix).replace("_", "-") + "-1"
    return f"example {name.replace('_', ' ')}"


def _example_int(name: str, context: str = "") -> int:
    if name == "amount_minor" and context in _TWO_UNITS:
        return 2 * 1999
    if name in _INTS:
        return _INTS[name]
    if name.endswith("_minor"):
        return 1999
    if name.endswith("_bps"):
        return 1000
    return 3


def _example_float(name: str) -> float:
    if name.endswith("_rate"):
        return 0.04
    if name == "previous_score":
        return 70.0
    return 72.5


def _example_scalar(field: FieldDescriptor, name: str, context: str = "") -> Any:
    if field.enum_type is not None:
        values = field.enum_type.values
        # The first real value: 0 is UNSPECIFIED by our lint rules and never a useful example.
        return values[1].number if len(values) > 1 else values[0].number
    kind = field.type
    if kind in _INT32 | _UINT32 | _INT64 | _UINT64:
        return _example_int(name, context)
    if kind in _FLOATS:
        return _example_float(name)
    if kind == FieldDescriptor.TYPE_BOOL:
        return True
    if kind == FieldDescriptor.TYPE_BYTES:
        return b"\x01\x02"
    return _example_string(name)


def fill_example(message: Message, depth: int = 0, context: str = "") -> Message:
    """Set every field of `message` to a plausible value (one element per list, one real oneof
    member); nested messages stop at a depth that no shopstream event reaches."""
    seen_oneofs: set[str] = set()
    desc = cast(Descriptor, message.DESCRIPTOR)
    for field in desc.fields:
        oneof = field.containing_oneof
        if oneof is not None and not _synthetic(oneof.name, field):
            if oneof.name in seen_oneofs:
                continue
            seen_oneofs.add(oneof.name)
        _fill_field(message, field, depth, context)
    return message


def _fill_field(message: Message, field: FieldDescriptor, depth: int, context: str) -> None:
    target = getattr(message, field.name)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        key, value = _MAPS.get(
            field.name, (_example_scalar(entry.fields_by_name["key"], "key"), None)
        )
        if value_field.message_type is not None:
            if depth < 4:
                fill_example(target[key], depth + 1)
        else:
            target[key] = value if value is not None else _example_scalar(value_field, field.name)
        return
    if field.message_type is not None:
        if depth >= 4:
            return
        if field.message_type.full_name == "google.protobuf.Timestamp":
            stamp = target.add() if field.is_repeated else target
            stamp.FromJsonString(EXAMPLE_TIME)
        elif field.is_repeated:
            fill_example(target.add(), depth + 1, field.name)
        else:
            fill_example(target, depth + 1, field.name)
        return
    value = _example_scalar(field, field.name, context)
    if field.is_repeated:
        second = (
            value.replace("-1", "-2") if isinstance(value, str) and value.endswith("-1") else None
        )
        target.extend([value] if second is None else [value, second])
    else:
        setattr(message, field.name, value)


def example_payload(full_name: str) -> dict[str, Any]:
    cls = symbol_database.Default().GetSymbol(full_name)
    message = fill_example(cls())
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def example_key(spec: TopicSpec) -> str:
    """A plausible record key from the registry's key description ("order id" → "order-1")."""
    return spec.key.removesuffix(" id").replace(" ", "-") + "-1"


def _stable_hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def example_headers(spec: TopicSpec, full_name: str) -> dict[str, str]:
    return {
        "ce_specversion": SPECVERSION,
        "ce_id": _stable_hex(f"id:{spec.name}:{full_name}", 32),
        "ce_type": full_name,
        "ce_source": f"shopstream/{spec.owner}",
        "ce_time": "2025-01-15T12:00:00.000000Z",
        "content-type": CONTENT_TYPE,
        "traceparent": f"00-{_stable_hex('trace:' + full_name, 32)}-"
        f"{_stable_hex('span:' + full_name, 16)}-01",
    }


# --- the document -------------------------------------------------------------------------------


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "CloudEvents Kafka binary-mode headers",
        "description": (
            "Written by the platform producer and outbox on every record (UTF-8 text values). "
            "Route by ce_type, deduplicate by ce_id."
        ),
        "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type"],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPECVERSION},
            "ce_id": {
                "type": "string",
                "description": "Unique event id (128 random bits as hex); kept when the outbox "
                "re-sends a record, so consumers deduplicate by it.",
            },
            "ce_type": {
                "type": "string",
                "description": "Full protobuf name of the value's message: decode by it.",
            },
            "ce_source": {
                "type": "string",
                "description": "The publishing service, shopstream/<service>.",
            },
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When the change happened (RFC 3339, UTC, microseconds, Z).",
            },
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            "ce_subject": {"type": "string", "description": "Optional subject of the event."},
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the change, when it was traced.",
            },
        },
    }


def _dlq_headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "Dead-letter headers",
        "description": (
            "A dead letter keeps the original key, value and CloudEvents headers and adds these. "
            "`shopstream dlq list <topic>` shows them, `shopstream dlq redrive <topic>` sends the "
            "records back."
        ),
        "properties": {
            dlq.H_TOPIC: {"type": "string", "description": "Topic the record was read from."},
            dlq.H_PARTITION: {"type": "string", "description": "Its partition (decimal)."},
            dlq.H_OFFSET: {"type": "string", "description": "Its offset (decimal)."},
            dlq.H_GROUP: {"type": "string", "description": "Consumer group that gave up on it."},
            dlq.H_ERROR_TYPE: {"type": "string", "description": "Exception class name."},
            dlq.H_ERROR_MESSAGE: {"type": "string", "description": "Why it failed."},
            dlq.H_FAILED_AT: {
                "type": "string",
                "format": "date-time",
                "description": "When it was dead-lettered.",
            },
        },
    }


def _channel_id(spec: TopicSpec) -> str:
    return spec.name


def _channel(spec: TopicSpec) -> dict[str, Any]:
    description = spec.description
    if spec.internal and not description.lower().startswith("internal"):
        description = f"Internal to {spec.owner}, not a public contract. {description}"
    topic_config: dict[str, Any] = {
        "cleanup.policy": [spec.cleanup_policy],
        "retention.ms": spec.retention_ms,
    }
    if spec.min_insync_replicas is not None:
        topic_config["min.insync.replicas"] = spec.min_insync_replicas
    binding: dict[str, Any] = {
        "topic": spec.name,
        "partitions": spec.partitions,
        "topicConfiguration": topic_config,
        "bindingVersion": KAFKA_BINDING_VERSION,
    }
    if spec.replication_factor is not None:
        binding["replicas"] = spec.replication_factor
    twin = spec.dlq
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"{description}\n\nKey: {spec.key}.",
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in spec.values},
        "tags": [
            {"name": f"owner:{spec.owner}"},
            *([{"name": "internal"}] if spec.internal else []),
        ],
        "bindings": {"kafka": binding},
        "x-owner": spec.owner,
        "x-internal": spec.internal,
        "x-key": spec.key,
        "x-dlq": {
            "address": twin.name,
            "partitions": twin.partitions,
            "retention.ms": twin.retention_ms,
            "headers": _ref(DLQ_HEADERS_SCHEMA),
        },
    }


def _operation(spec: TopicSpec) -> dict[str, Any]:
    channel = _channel_id(spec)
    return {
        "action": "send",
        "title": f"{spec.owner} publishes {spec.name}",
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in spec.values],
        "x-owner": spec.owner,
    }


def _message(full_name: str, specs: list[TopicSpec], schemas: SchemaBuilder) -> dict[str, Any]:
    desc = cast(Descriptor, symbol_database.Default().GetSymbol(full_name).DESCRIPTOR)
    first = specs[0]
    key_descriptions = sorted({s.key for s in specs})
    return {
        "name": full_name,
        "title": desc.name,
        "summary": f"{desc.name} on {', '.join(s.name for s in specs)}.",
        "contentType": CONTENT_TYPE,
        "headers": {
            "allOf": [
                _ref(HEADERS_SCHEMA),
                {"properties": {"ce_type": {"const": full_name}}},
            ]
        },
        "payload": schemas.message(desc),
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"UTF-8 {' or '.join(key_descriptions)}",
                    "examples": [example_key(first)],
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": desc.name,
                "summary": f"key {example_key(first)!r} on {first.name}",
                "headers": example_headers(first, full_name),
                "payload": example_payload(full_name),
            }
        ],
        "x-protobuf-message": full_name,
        "x-protobuf-file": desc.file.name,
    }


def _protos_version() -> str:
    try:
        return importlib.metadata.version("shopstream-protos")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(registry: Iterable[TopicSpec] | None = None) -> dict[str, Any]:
    import_all_messages()
    specs = list(registry if registry is not None else load_registry())
    by_message: dict[str, list[TopicSpec]] = {}
    for spec in specs:
        for name in spec.values:
            by_message.setdefault(name, []).append(spec)
    schemas = SchemaBuilder()
    messages = {name: _message(name, by_message[name], schemas) for name in sorted(by_message)}
    all_schemas = {
        HEADERS_SCHEMA: _headers_schema(),
        DLQ_HEADERS_SCHEMA: _dlq_headers_schema(),
        **schemas.schemas,
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "shopstream events",
            "version": _protos_version(),
            "description": (
                "Every Kafka topic shopstream publishes: generated from protos/topics.yaml and the "
                "protobuf descriptors by `shopstream topics asyncapi` (do not edit by hand; run "
                "`make asyncapi`). Values are binary protobuf named by the ce_type header; the "
                "payload schemas below describe their proto3 JSON mapping with proto field names. "
                "Every topic has a dead-letter twin `<topic>.dlq` (x-dlq). Topics tagged "
                "`internal` are a service's own intermediate streams, not a contract. "
                "See docs/subscribing.md."
            ),
            "tags": [{"name": "internal", "description": "Not a public contract."}],
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The single-node broker of the local stack (`make run`).",
            }
        },
        "channels": {_channel_id(s): _channel(s) for s in specs},
        "operations": {f"{s.name}.send": _operation(s) for s in specs},
        "components": {
            "messages": messages,
            "schemas": dict(sorted(all_schemas.items())),
        },
    }


class _Dumper(yaml.SafeDumper):
    """Never anchors and aliases (&id001): every node is written out where it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line descriptions as literal blocks, as they read in topics.yaml.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(document: dict[str, Any]) -> str:
    header = (
        "# Generated by `shopstream topics asyncapi` from protos/topics.yaml and the protobuf\n"
        "# descriptors. Do not edit: run `make asyncapi`.\n"
    )
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return header + body


def generate(registry: TopicRegistry | None = None) -> str:
    return render(build_document(registry))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def asyncapi_command(output: str | None, *, check: bool) -> int:
    """Write (or with check, compare) the document; `-` as output prints it."""
    text = generate()
    if output == "-":
        print(text, end="")
        return 0
    path = Path(output) if output else DEFAULT_PATH
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            state = "missing" if current is None else "stale"
            return fail(f"{_display(path)} is {state}: run make asyncapi")
        console.print(f"{_display(path)} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {_display(path)}")
    return 0
