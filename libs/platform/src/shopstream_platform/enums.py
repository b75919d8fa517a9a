"""Hand-mirrored enums: a domain IntEnum that stands for a proto enum without importing it.

Domain modules stay free of generated code, so a status the domain reasons about is an IntEnum
whose numbers equal the proto enum's. Nothing ties the two but a comment, so each service has a
unit test (`tests/unit/test_enum_mirrors.py`) that compares them with `mirror_mismatches`; a
converter then passes the number with a `cast` to the proto's value type, not a type: ignore.
"""

from __future__ import annotations

import enum
from typing import Any


def mirror_mismatches(mirror: type[enum.IntEnum], proto: Any) -> list[str]:
    """What differs between `mirror` and the proto enum `proto` (a generated enum wrapper, e.g.
    `order_pb2.OrderState`): every member must be a proto value of the same name (without the
    enum's prefix, `ORDER_STATE_`) and number, and every proto value a member, except the
    proto's zero value when the mirror has no member for it (UNSPECIFIED)."""
    values = {v.name: v.number for v in proto.DESCRIPTOR.values}
    zero = next((name for name, number in values.items() if number == 0), "")
    prefix = zero.removesuffix("UNSPECIFIED") if zero.endswith("_UNSPECIFIED") else ""
    expected = {name.removeprefix(prefix): number for name, number in values.items()}
    problems = []
    for member in mirror:
        if member.name not in expected:
            problems.append(f"{mirror.__name__}.{member.name}: no {prefix}{member.name}")
        elif expected[member.name] != member.value:
            problems.append(
                f"{mirror.__name__}.{member.name} = {member.value}, "
                f"{prefix}{member.name} = {expected[member.name]}"
            )
    names = {m.name for m in mirror}
    for name, number in expected.items():
        if name not in names and number != 0:
            problems.append(f"{prefix}{name} = {number}: not in {mirror.__name__}")
    return problems
