"""Deterministic ids and random streams: everything is derived from the seed, the run id and counters."""

from __future__ import annotations

import hashlib
import random


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts, the same in every process (unlike `hash()`)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sub_rng(seed: int, *labels: object) -> random.Random:
    """An independent random stream per purpose, so one decision never shifts another's draws."""
    return random.Random(stable_int(seed, *labels))


def event_id(run_id: str, *parts: object) -> str:
    """A CloudEvents id for a simulated event: 128 bits of SHA-256 as hex, like the platform's.

    Derived rather than random, so a re-sent event keeps its id and consumers deduplicate it.
    """
    return hashlib.sha256("\x1f".join([run_id, *(str(p) for p in parts)]).encode()).hexdigest()[:32]


def hex_token(rng: random.Random, n_bytes: int) -> str:
    return f"{rng.getrandbits(8 * n_bytes):0{2 * n_bytes}x}"
