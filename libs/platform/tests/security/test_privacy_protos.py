"""Privacy of the contract: no proto (events, APIs, internal records) has a field for a device
advertising id. The fields are read from the descriptors of every generated module, so a new
proto file or message is checked without being listed here."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator

import pytest
from google.protobuf.descriptor import Descriptor, FileDescriptor

import shopstream

pytestmark = pytest.mark.security

# IDFA (iOS), GAID / AAID / ADID (Android), OAID (Android in China), MAID / IFA (generic),
# and the spelled-out forms; matched on whole words of a snake_case field name.
_ADVERTISING_ID = re.compile(
    r"(^|_)(idfa|gaid|aaid|adid|oaid|maid|ifa)(_|$)"
    r"|advertising_?id|advertiser_tracking_id|device_?id|android_?id|mobile_ad_id"
)


def looks_like_an_advertising_id(field_name: str) -> bool:
    return bool(_ADVERTISING_ID.search(field_name.lower()))


def proto_files() -> list[FileDescriptor]:
    files = {}
    for module in pkgutil.walk_packages(shopstream.__path__, "shopstream."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            files[descriptor.name] = descriptor
    return list(files.values())


def _messages(descriptor: Descriptor) -> Iterator[Descriptor]:
    yield descriptor
    for nested in descriptor.nested_types:
        yield from _messages(nested)


def test_the_matcher_catches_advertising_ids_and_spares_first_party_ids() -> None:
    for name in ("idfa", "gaid", "device_id", "advertising_id", "buyer_idfa", "android_id"):
        assert looks_like_an_advertising_id(name), name
    for name in ("install_id", "ad_click_id", "advertiser_id", "buyer_id", "session_id"):
        assert not looks_like_an_advertising_id(name), name


def test_no_proto_has_a_device_advertising_id_field() -> None:
    files = proto_files()
    fields = [
        (message.full_name, field.name)
        for file in files
        if file.package.startswith("shopstream.")
        for top in file.message_types_by_name.values()
        for message in _messages(top)
        for field in message.fields
    ]
    # Guard against a scan that finds nothing (a broken walk would pass vacuously).
    assert len({f.package.split(".")[1] for f in files if f.package.startswith("shopstream.")}) >= 5
    assert len(fields) > 300, len(fields)
    offending = [f"{m}.{f}" for m, f in fields if looks_like_an_advertising_id(f)]
    print(f"{len(fields)} fields in {len(files)} proto files scanned")
    assert not offending, offending
