"""Opaque page tokens over keyset cursors (the last id of the previous page)."""

from __future__ import annotations

import base64

from shopstream_platform.errors import InvalidArgumentError


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(token: str, field: str = "page.page_token") -> str:
    """The cursor inside a token; INVALID_ARGUMENT naming `field` for anything else."""
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgumentError(field, "is not a token from a previous page") from None


def page_size(requested: int, default: int, maximum: int, field: str = "page.page_size") -> int:
    """The page size to use: `default` for 0, at most `maximum`; negative is INVALID_ARGUMENT."""
    if requested < 0:
        raise InvalidArgumentError(field, "must not be negative")
    return min(requested or default, maximum)
