"""In-memory creator search index: numpy columns so filters and top-k stay fast at 1M creators.

Layout (one row per creator, rows are never freed: a creator is replaced, not deleted):

- numeric columns by row: score (float64), followers / gmv / gpm (int64), MCN code (int32,
  0 = independent), UTF-8 byte length of the creator id (int32), version (int64: the state's
  input watermark, so a copy read late from another process never overwrites a newer row);
- category membership as bitmask words: one uint64 array per 64 categories, categories get a
  bit in the order first seen (category 64 starts a second word array, and so on, so any number
  of categories works; each extra word costs 8 bytes per row);
- per-category scores in a shared pool of (category code, row, score) entries, one per
  membership, so memory follows the number of memberships, not categories x creators;
- the creator id as big-endian uint64 words (8 bytes each, zero-padded), which order exactly
  like Python's ``str`` comparison (UTF-8 preserves code point order; the byte length breaks the
  one remaining tie, ids differing only by trailing NULs), so creator_id tie-breaks are
  vectorised too;
- for the text filter, per row: a 320-bit signature (five uint64 columns) of the hashed
  characters, character pairs and character triples of the case-folded display name and
  creator id (joined by a newline), and those UTF-8 bytes in a fixed-width column. A query word can only occur in a row whose
  signature holds all of the word's bits, so a few vectorised AND/compare passes drop most rows;
  numpy's byte substring search then checks the rest exactly (texts over _TEXT_MAX_BYTES or
  holding a NUL are checked in Python). Signatures and id words of new or renamed rows are
  computed in vectorised batches (before the next read, or every _BATCH rows), which keeps an
  insert at a few microseconds.

Ordering never sorts all matches: it selects the page with np.partition, key by key
(primary key, then the id words), so ties at the page boundary are resolved exactly, and only
the page itself (or the first offset+limit rows for shallow pages) is lexsorted.

Not thread-safe: use it from one thread (the service's event loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

SortKey = Literal["score", "followers", "gmv", "gpm"]

_Rows = npt.NDArray[np.intp]
_Key = Callable[[_Rows | None], npt.NDArray[Any]]

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1
_MUL = 0x9E3779B1  # 2^32 / golden ratio: Fibonacci hashing
_FNV = 0x01000193  # FNV-1 prime: mixes the first character of a pair
# Pages ending at or before this rank are ordered by sorting the first offset+limit rows; deeper
# pages select the rows above the page a second time and sort only the page.
_SHALLOW = 4096
# New rows / renamed rows whose id words and text signatures are computed together.
_BATCH = 4096
# The text prefilter estimates each signature word's pass rate on about this many rows, and
# skips (after the first) those that more than this share of rows would pass anyway.
_SAMPLE = 2048
_USELESS_PASS_RATE = 0.8
# Texts up to this many UTF-8 bytes are checked by numpy; longer ones (rare) in Python.
_TEXT_MAX_BYTES = 128


@dataclass(frozen=True)
class CreatorSummary:
    """What the index keeps per creator: enough to filter, rank and render a search hit."""

    creator_id: str
    display_name: str
    followers: int
    mcn: str  # "" = independent
    categories: tuple[str, ...]  # categories the creator is active in (declared or sold in)
    score: float  # 0..100 overall commerce score
    gmv_minor: int  # decayed GMV, minor units
    gpm_minor: int  # GMV per 1,000 views, minor units
    category_scores: dict[str, float]  # category id -> score within that category (0..100)
    tier: int  # 0..8
    flagged: bool  # suspicious audience


def _signature(text: str) -> int:
    """320-bit set of hashed characters (bits 0-63), character pairs (64-191) and triples
    (192-319) of text: a word can only occur in a text whose signature holds all its bits.

    The scalar twin of _signatures (used for query words); both must give the same bits.
    """
    sig = 0
    a = b = -1
    for ch in text:
        c = ord(ch)
        sig |= 1 << (((c * _MUL) & _M32) >> 26)
        if b >= 0:
            pair = ((b * _FNV) & _M32) ^ c
            sig |= 1 << (64 + (((pair * _MUL) & _M32) >> 25))
            if a >= 0:
                triple = (((((a * _FNV) & _M32) ^ b) * _FNV) & _M32) ^ c
                sig |= 1 << (192 + (((triple * _MUL) & _M32) >> 25))
        a, b = b, c
    return sig


def _text_of(summary: CreatorSummary) -> str:
    """What the text filter searches: both fields case-folded, a newline between so that no
    query word (never holding whitespace) can match across them."""
    return f"{summary.display_name.casefold()}\n{summary.creator_id.casefold()}"


def _split_bits(bits: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.uint64], ...]:
    """Hash values 0..127 as one-hot (low word, high word) uint64 pairs."""
    mask = np.left_shift(np.uint64(1), (bits & np.uint32(63)).astype(np.uint64))
    upper = bits >= 64
    zero = np.uint64(0)
    return np.where(upper, zero, mask), np.where(upper, mask, zero)


def _signatures(texts: list[str]) -> list[npt.NDArray[np.uint64]]:
    """_signature of many non-empty texts at once, as five uint64 words per text
    (vectorised: a Python loop over characters would make inserting a creator much dearer)."""
    lengths = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
    starts = np.zeros(len(texts), dtype=np.intp)
    np.cumsum(lengths[:-1], out=starts[1:])
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    codes = np.frombuffer(joined, dtype=np.uint32)
    mul, fnv, shift = np.uint32(_MUL), np.uint32(_FNV), np.uint32(25)
    chars = np.left_shift(np.uint64(1), ((codes * mul) >> np.uint32(26)).astype(np.uint64))
    pairs = np.zeros(len(codes), dtype=np.uint32)  # pairs[i]: the pair ending at i
    pairs[1:] = (codes[:-1] * fnv) ^ codes[1:]
    triples = np.zeros(len(codes), dtype=np.uint32)
    triples[2:] = (pairs[1:-1] * fnv) ^ codes[2:]
    pair_low, pair_high = _split_bits((pairs * mul) >> shift)
    triple_low, triple_high = _split_bits((triples * mul) >> shift)
    # No pair or triple may span two texts: clear those starting before a text's first char.
    for words in (pair_low, pair_high, triple_low, triple_high):
        words[starts] = 0
    second = starts + 1
    second = second[second < len(codes)]
    triple_low[second] = 0
    triple_high[second] = 0
    return [
        np.bitwise_or.reduceat(words, starts)
        for words in (chars, pair_low, pair_high, triple_low, triple_high)
    ]


def _grown(arr: npt.NDArray[Any], capacity: int) -> npt.NDArray[Any]:
    """A copy of arr with room for capacity items (zero-filled), for amortised O(1) appends."""
    new = np.zeros(capacity, dtype=arr.dtype)
    new[: len(arr)] = arr
    return new


def _smallest(keys: Sequence[_Key], count: int, m: int) -> _Rows:
    """Positions (unordered) of the m smallest of count items under the lexicographic keys.

    Selects with np.partition on the first key; only the items tied with the m-th value go on
    to the next key, so ties at the boundary are resolved exactly without sorting everything.
    """
    if m >= count:
        return np.arange(count, dtype=np.intp)
    chosen: list[_Rows] = []
    cand: _Rows | None = None  # None: all positions
    size = count
    need = m
    for key in keys:
        if need <= 0:
            break
        if need >= size:
            chosen.append(np.arange(count, dtype=np.intp) if cand is None else cand)
            need = 0
            break
        vals = key(cand)
        kth = np.partition(vals, need - 1)[need - 1]
        less = np.flatnonzero(vals < kth)
        equal = np.flatnonzero(vals == kth)
        if cand is not None:
            less = cand[less]
            equal = cand[equal]
        chosen.append(less)
        need -= len(less)
        cand = equal
        size = len(equal)
    if need > 0 and cand is not None:  # every key tied: cannot happen, creator ids are unique
        chosen.append(cand[:need])
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.intp)


def _ordered(keys: Sequence[_Key], positions: _Rows) -> _Rows:
    """positions sorted by the lexicographic keys (first key most significant)."""
    if len(positions) <= 1:
        return positions
    columns = [key(positions) for key in reversed(keys)]
    ordered: _Rows = positions[np.lexsort(columns)]
    return ordered


def _page(keys: Sequence[_Key], count: int, lo: int, hi: int) -> _Rows:
    """Positions ranked [lo, hi) among count items under the keys, in order."""
    hi = min(hi, count)
    if lo >= hi:
        return np.empty(0, dtype=np.intp)
    top = _smallest(keys, count, hi)
    if lo == 0 or hi <= _SHALLOW:
        return _ordered(keys, top)[lo:]

    def within(key: _Key) -> _Key:
        return lambda pos: key(top if pos is None else top[pos])

    inner = [within(key) for key in keys]
    above = _smallest(inner, len(top), lo)
    keep = np.ones(len(top), dtype=bool)
    keep[above] = False
    return _ordered(keys, top[keep])


class ScoreIndex:
    """Creator search and per-category top lists over columnar numpy arrays, upserted in place."""

    def __init__(self, initial_capacity: int = 1024) -> None:
        cap = max(16, int(initial_capacity))
        self._cap = cap
        self._n = 0
        self._rows: dict[str, int] = {}
        self._summaries: list[CreatorSummary] = []
        self._row_entries: list[tuple[int, ...]] = []  # pool entries of each row's categories
        # Rows whose id words (new rows) or text signature (new or renamed) are not computed
        # yet: done in vectorised batches before the next read or every _BATCH rows.
        self._pending_ids: list[int] = []
        self._pending_texts: list[int] = []
        self._score = np.zeros(cap, dtype=np.float64)
        self._followers = np.zeros(cap, dtype=np.int64)
        self._gmv = np.zeros(cap, dtype=np.int64)
        self._gpm = np.zeros(cap, dtype=np.int64)
        self._mcn = np.zeros(cap, dtype=np.int32)
        self._id_len = np.zeros(cap, dtype=np.int32)
        self._version = np.zeros(cap, dtype=np.int64)
        self._sig = [np.zeros(cap, dtype=np.uint64) for _ in range(5)]  # text signature words
        # The text's UTF-8 bytes, fixed width, for the vectorised substring check; rows whose
        # text is longer than _TEXT_MAX_BYTES or holds a NUL are checked in Python instead.
        self._text_bytes = np.zeros(cap, dtype="S16")
        self._text_in_python = np.zeros(cap, dtype=bool)
        self._id_words: list[npt.NDArray[np.uint64]] = []
        self._cat_words: list[npt.NDArray[np.uint64]] = []
        self._mcn_codes: dict[str, int] = {"": 0}
        self._cat_codes: dict[str, int] = {}  # category -> code; bit = code % 64, word = code // 64
        # Category score pool: one entry per (creator, category); ent_cat -1 = free entry.
        self._ent_cap = cap
        self._ent_n = 0
        self._ent_free: list[int] = []
        self._ent_cat = np.full(cap, -1, dtype=np.int32)
        self._ent_row = np.zeros(cap, dtype=np.intp)
        self._ent_score = np.zeros(cap, dtype=np.float64)

    # ----------------------------------------------------------------------------- writes

    def upsert(self, summary: CreatorSummary, version: int = -1) -> bool:
        """Insert or replace by creator_id; only what changed is rewritten, so it stays cheap.

        `version` orders the summaries of one creator (the state's input watermark): one older
        than the row's is ignored, and False returned. The default -1 never loses to a row
        upserted without a version."""
        if not math.isfinite(summary.score):
            raise ValueError(f"score of {summary.creator_id!r} is not finite: {summary.score}")
        scores = summary.category_scores
        for category, value in scores.items():
            if not math.isfinite(value):
                raise ValueError(f"category score {category!r} of {summary.creator_id!r}: {value}")
        row = self._rows.get(summary.creator_id)
        if row is None:
            self._insert(summary)
            self._version[self._n - 1] = version
            return True
        if version < self._version[row]:
            return False
        old = self._summaries[row]
        try:
            self._write_numbers(row, summary)
        except (OverflowError, TypeError, ValueError):
            self._write_numbers(row, old)  # all or nothing
            raise
        if old.categories == summary.categories:
            if scores != old.category_scores:
                ent_score = self._ent_score
                for entry, category in zip(
                    self._row_entries[row], dict.fromkeys(summary.categories), strict=True
                ):
                    ent_score[entry] = scores.get(category, 0.0)
        else:
            self._set_categories(row, summary.categories, scores)
        self._summaries[row] = summary  # before a flush below: it reads the summaries
        self._version[row] = version
        if old.display_name != summary.display_name:
            self._pending_texts.append(row)
            if len(self._pending_texts) >= _BATCH:
                self._flush()
        return True

    def _insert(self, summary: CreatorSummary) -> None:
        """Append a new creator's row; its id words and signature are computed in a batch."""
        row = self._n
        if row == self._cap:
            self._grow(self._cap * 2)
        # Numeric columns first: an out-of-range int raises before the row is taken.
        self._write_numbers(row, summary)
        self._rows[summary.creator_id] = row
        self._n = row + 1
        self._summaries.append(summary)
        self._row_entries.append(())
        self._set_categories(row, summary.categories, summary.category_scores)
        self._pending_ids.append(row)
        self._pending_texts.append(row)
        if len(self._pending_texts) >= _BATCH:
            self._flush()

    def _write_numbers(self, row: int, summary: CreatorSummary) -> None:
        """The numeric columns of a row (numpy raises OverflowError past int64)."""
        self._followers[row] = summary.followers
        self._gmv[row] = summary.gmv_minor
        self._gpm[row] = summary.gpm_minor
        self._score[row] = summary.score
        code = self._mcn_codes.get(summary.mcn)
        if code is None:
            code = self._mcn_codes[summary.mcn] = len(self._mcn_codes)
        self._mcn[row] = code

    def _flush(self) -> None:
        """Compute pending id words and text signatures, vectorised (before any read)."""
        if self._pending_ids:
            rows = np.array(self._pending_ids, dtype=np.intp)
            summaries = self._summaries
            encoded = [
                summaries[row].creator_id.encode("utf-8", "surrogatepass")
                for row in self._pending_ids
            ]
            self._pending_ids = []
            self._id_len[rows] = np.fromiter(map(len, encoded), dtype=np.int32, count=len(rows))
            width = max(map(len, encoded))
            while len(self._id_words) * 8 < width:
                self._id_words.append(np.zeros(self._cap, dtype=np.uint64))
            n_words = (width + 7) // 8
            if n_words:
                # Zero-padded fixed-width bytes viewed as big-endian words: byte order = order.
                padded = np.array(encoded, dtype=f"S{n_words * 8}")
                words = padded.view(">u8").reshape(len(rows), n_words)
                for i in range(n_words):
                    self._id_words[i][rows] = words[:, i]
        if self._pending_texts:
            rows = np.array(self._pending_texts, dtype=np.intp)
            summaries = self._summaries
            texts = [_text_of(summaries[row]) for row in self._pending_texts]
            self._pending_texts = []
            for column, words in zip(self._sig, _signatures(texts), strict=True):
                column[rows] = words
            self._store_text_bytes(rows, texts)

    def _store_text_bytes(self, rows: _Rows, texts: list[str]) -> None:
        """Fixed-width bytes for the vectorised text check, widening the column as needed."""
        encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
        in_python = [len(e) > _TEXT_MAX_BYTES or b"\0" in e for e in encoded]
        fits = [b"" if p else e for e, p in zip(encoded, in_python, strict=True)]
        width = max(map(len, fits))
        if width > self._text_bytes.dtype.itemsize:
            wider = -(-width // 16) * 16
            self._text_bytes = self._text_bytes.astype(f"S{wider}")
        self._text_bytes[rows] = fits
        self._text_in_python[rows] = in_python

    def _grow(self, cap: int) -> None:
        """Double the row columns: amortised O(1) per insert."""
        self._score = _grown(self._score, cap)
        self._followers = _grown(self._followers, cap)
        self._gmv = _grown(self._gmv, cap)
        self._gpm = _grown(self._gpm, cap)
        self._mcn = _grown(self._mcn, cap)
        self._id_len = _grown(self._id_len, cap)
        self._version = _grown(self._version, cap)
        self._sig = [_grown(words, cap) for words in self._sig]
        self._text_bytes = _grown(self._text_bytes, cap)
        self._text_in_python = _grown(self._text_in_python, cap)
        self._id_words = [_grown(words, cap) for words in self._id_words]
        self._cat_words = [_grown(words, cap) for words in self._cat_words]
        self._cap = cap

    def _new_category(self, category: str) -> int:
        """Give a category the next code (bit), adding a bitmask word every 64 categories."""
        code = self._cat_codes[category] = len(self._cat_codes)
        if code // 64 >= len(self._cat_words):
            self._cat_words.append(np.zeros(self._cap, dtype=np.uint64))
        return code

    def _set_categories(
        self, row: int, categories: tuple[str, ...], scores: dict[str, float]
    ) -> None:
        """Rewrite a row's membership bits and category-score entries (membership changed)."""
        free = self._ent_free
        ent_cat, ent_row, ent_score = self._ent_cat, self._ent_row, self._ent_score
        for entry in self._row_entries[row]:
            ent_cat[entry] = -1
            free.append(entry)
        codes = self._cat_codes
        mask = 0  # all words at once, as one Python int
        entries: list[int] = []
        for category in dict.fromkeys(categories):
            code = codes.get(category)
            if code is None:
                code = self._new_category(category)
            mask |= 1 << code
            if free:
                entry = free.pop()
            else:
                entry = self._ent_n
                if entry == self._ent_cap:
                    self._grow_pool()
                    ent_cat, ent_row, ent_score = self._ent_cat, self._ent_row, self._ent_score
                self._ent_n = entry + 1
            ent_cat[entry] = code
            ent_row[entry] = row
            ent_score[entry] = scores.get(category, 0.0)
            entries.append(entry)
        for i, word in enumerate(self._cat_words):
            word[row] = (mask >> (64 * i)) & _M64
        self._row_entries[row] = tuple(entries)

    def _grow_pool(self) -> None:
        """Double the category-score pool."""
        cap = self._ent_cap * 2
        self._ent_cat = _grown(self._ent_cat, cap)
        self._ent_cat[self._ent_cap :] = -1
        self._ent_row = _grown(self._ent_row, cap)
        self._ent_score = _grown(self._ent_score, cap)
        self._ent_cap = cap

    # ----------------------------------------------------------------------------- reads

    def get(self, creator_id: str) -> CreatorSummary | None:
        """The creator's latest summary, or None if never indexed."""
        row = self._rows.get(creator_id)
        return None if row is None else self._summaries[row]

    def __len__(self) -> int:
        """Number of creators indexed."""
        return self._n

    def search(
        self,
        *,
        category: str = "",
        min_followers: int = 0,
        max_followers: int = 0,
        mcn: str = "",
        min_score: float = 0.0,
        text: str = "",
        sort: SortKey = "score",
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[CreatorSummary], int]:
        """Matching creators sorted descending by `sort` (ties by creator_id ascending), the page
        [offset, offset+limit), and the total number of matches. 0/"" means no filter;
        max_followers=0 means unbounded. text: case-insensitive substring of display_name or
        creator_id (all words must match)."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        if self._pending_ids or self._pending_texts:
            self._flush()
        n = self._n
        conditions: list[npt.NDArray[np.bool_]] = []
        if category:
            code = self._cat_codes.get(category)
            if code is None:
                return [], 0
            bit = np.uint64(1 << (code % 64))
            conditions.append((self._cat_words[code // 64][:n] & bit) != 0)
        if min_followers:
            conditions.append(self._followers[:n] >= min_followers)
        if max_followers:
            conditions.append(self._followers[:n] <= max_followers)
        if mcn:
            mcn_code = self._mcn_codes.get(mcn)
            if mcn_code is None:
                return [], 0
            conditions.append(self._mcn[:n] == mcn_code)
        if min_score:
            conditions.append(self._score[:n] >= min_score)
        rows: _Rows | None = None  # None: all rows
        if conditions:
            mask = conditions[0]
            for condition in conditions[1:]:
                mask &= condition
            rows = np.flatnonzero(mask)
        words = text.casefold().split()
        if words:  # after the numeric filters, on the rows they left
            rows = self._verify_text(self._signature_filter(rows, words), words)
        total = n if rows is None else len(rows)

        # Descending as ascending: negate floats; invert ints (~x = -x-1 cannot overflow).
        primary: _Key
        if sort == "score":
            primary = self._row_key(self._score, rows, np.negative)
        elif sort == "followers":
            primary = self._row_key(self._followers, rows, np.invert)
        elif sort == "gmv":
            primary = self._row_key(self._gmv, rows, np.invert)
        elif sort == "gpm":
            primary = self._row_key(self._gpm, rows, np.invert)
        else:
            raise ValueError(f"unknown sort key {sort!r}")
        keys = [primary, *self._id_keys(rows)]
        positions = _page(keys, total, offset, offset + limit)
        page = positions if rows is None else rows[positions]
        summaries = self._summaries
        return [summaries[row] for row in page.tolist()], total

    def top(self, category: str, n: int) -> list[CreatorSummary]:
        """Top n creators in a category by category_scores[category] descending (ties: overall
        score desc, then creator_id asc). Only creators with that category."""
        code = self._cat_codes.get(category)
        if code is None or n <= 0:
            return []
        if self._pending_ids:
            self._flush()
        # Membership is `categories`; a member without a category_scores entry ranks as 0.0.
        entries = np.flatnonzero(self._ent_cat[: self._ent_n] == code)
        rows = self._ent_row[entries]
        cat_scores = self._ent_score[entries]

        def by_category_score(pos: _Rows | None) -> npt.NDArray[Any]:
            negated: npt.NDArray[Any] = np.negative(cat_scores if pos is None else cat_scores[pos])
            return negated

        keys = [by_category_score, self._row_key(self._score, rows, np.negative)]
        keys += self._id_keys(rows)
        positions = _page(keys, len(rows), 0, n)
        summaries = self._summaries
        return [summaries[row] for row in rows[positions].tolist()]

    def rank(self, category: str, creator_id: str) -> int:
        """1-based position of the creator in top(category, ...) order; 0 when not a member.

        Counts the members ranked before it in one vectorised pass instead of sorting the
        category: O(members) with a small constant, a few ms at a million."""
        code = self._cat_codes.get(category)
        row = self._rows.get(creator_id)
        if code is None or row is None:
            return 0
        summary = self._summaries[row]
        mine = next(
            (
                e
                for e, c in zip(
                    self._row_entries[row], dict.fromkeys(summary.categories), strict=True
                )
                if c == category
            ),
            None,
        )
        if mine is None:
            return 0
        members = np.flatnonzero(self._ent_cat[: self._ent_n] == code)
        cat_scores = self._ent_score[members]
        my_cat, my_score = self._ent_score[mine], self._score[row]
        # Only members with my category score need the overall score looked up.
        level = np.flatnonzero(cat_scores == my_cat)
        level_rows = self._ent_row[members[level]]
        overall = self._score[level_rows]
        ahead = int(np.count_nonzero(cat_scores > my_cat))
        ahead += int(np.count_nonzero(overall > my_score))
        me = creator_id.encode("utf-8", "surrogatepass")
        summaries = self._summaries
        before = sum(
            1
            for r in level_rows[overall == my_score].tolist()
            if summaries[r].creator_id.encode("utf-8", "surrogatepass") < me
        )
        return ahead + before + 1

    # ----------------------------------------------------------------------------- helpers

    def _row_key(
        self,
        column: npt.NDArray[Any],
        rows: _Rows | None,
        transform: Callable[[npt.NDArray[Any]], npt.NDArray[Any]] | None,
    ) -> _Key:
        """A sort key over positions in rows (None = all rows), ascending = wanted order."""
        n = self._n

        def key(pos: _Rows | None) -> npt.NDArray[Any]:
            if pos is None:
                values = column[:n] if rows is None else column[rows]
            else:
                values = column[pos] if rows is None else column[rows[pos]]
            return values if transform is None else transform(values)

        return key

    def _id_keys(self, rows: _Rows | None) -> list[_Key]:
        """Keys ordering by creator_id ascending: its big-endian words, then its byte length."""
        keys = [self._row_key(words, rows, None) for words in self._id_words]
        keys.append(self._row_key(self._id_len, rows, None))
        return keys

    def _signature_filter(self, rows: _Rows | None, words: list[str]) -> _Rows:
        """Vectorised prefilter: rows whose signature has every bit of every query word.

        Signature words are applied most selective first, as estimated on a sample of rows,
        each on the rows still left; one that nearly every row passes (its bits collide with
        an n-gram that is everywhere, e.g. a common id prefix) is not worth a pass and skipped.
        """
        need = 0
        for word in words:
            need |= _signature(word)
        n = self._n
        stride = max(1, n // _SAMPLE)
        tests: list[tuple[float, int, np.uint64]] = []
        for i, column in enumerate(self._sig):
            part = (need >> (64 * i)) & _M64
            if part:
                bits = np.uint64(part)
                sample = column[:n:stride]
                passing = float(np.count_nonzero((sample & bits) == bits)) / max(1, len(sample))
                tests.append((passing, i, bits))
        tests.sort()
        for k, (passing, i, bits) in enumerate(tests):
            if k and passing > _USELESS_PASS_RATE:
                break
            column = self._sig[i]
            if rows is None:
                rows = np.flatnonzero((column[:n] & bits) == bits)
            else:
                rows = rows[(column[rows] & bits) == bits]
            if not len(rows):
                break
        return np.arange(n, dtype=np.intp) if rows is None else rows

    def _verify_text(self, rows: _Rows, words: list[str]) -> _Rows:
        """The exact substring check on the rows that passed the prefilter: numpy's byte
        substring search (UTF-8 substrings are exactly the str substrings) on the fixed-width
        column, Python for the few rows kept out of it."""
        in_python = self._text_in_python[rows]
        checked = rows[~in_python]
        haystacks = self._text_bytes[checked]
        for word in words:
            if not len(checked):
                break
            found = np.char.find(haystacks, word.encode("utf-8", "surrogatepass")) >= 0
            checked = checked[found]
            haystacks = haystacks[found]
        others = rows[in_python]
        if not len(others):
            return checked
        summaries = self._summaries
        kept = [row for row in others.tolist() if all(w in _text_of(summaries[row]) for w in words)]
        return np.sort(np.concatenate([checked, np.array(kept, dtype=np.intp)]))
