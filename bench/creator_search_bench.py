"""Creator search index at scale: build, SearchCreators/TopCreators latency, upsert throughput.

Target (design): with 1,000,000 creators on a 2-core machine, search() p99 <= 50 ms, top()
similar, and upsert cheap enough for thousands of score changes per second.

Steps (everything seeded, no I/O but the optional JSON):
  1. generate N creators: power-law followers, ~30 categories of Zipf-like popularity (1-3 per
     creator), ~200 MCNs (40% independent), names from first/last name lists;
  2. build a ScoreIndex by upserting them one by one (time, RSS growth, numpy bytes);
  3. 1,000 random searches mixing filters (category, follower range, MCN, min score, text),
     sort keys and pages (mostly the first pages, some deep);
  4. 1,000 random top() calls;
  5. 100k random upserts: 90% score changes, 5% category/MCN moves, 5% new creators.

    uv run --with numpy python bench/creator_search_bench.py [-n 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services/creator-score/src"))

from _common import REPO, machine_facts, percentile

from shopstream_creator_score.search.index import (
    CreatorSummary,
    ScoreIndex,
    SortKey,
)

TARGET_P99_MS = 50.0
N_CATEGORIES = 30
N_MCNS = 200
SORTS: tuple[SortKey, ...] = ("score", "followers", "gmv", "gpm")
SUFFIXES = ["", "", "", " Live", " Shop", " Official", " TV", " Studio", " Deals", " Daily"]
SYLLABLES = [
    "an", "be", "ca", "da", "el", "fa", "gi", "ha", "is", "jo", "ka", "li", "ma", "no", "ol",
    "pe", "qu", "ra", "si", "ta", "ul", "vi", "wa", "xe", "ya", "zo", "mar", "lin", "son", "ber",
]  # fmt: skip


def rss_mib() -> float:
    """Resident set size of this process, from /proc (what the machine actually pays)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def numpy_bytes(index: ScoreIndex) -> int:
    """Bytes held by the index's numpy columns (diagnostic: reads its private attributes)."""
    total = 0
    for value in vars(index).values():
        arrays = value if isinstance(value, list) else [value]
        total += sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    return total


def stats_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3) if ordered else float("nan"),
    }


def fmt(label: str, s: dict[str, float]) -> str:
    return (
        f"  {label:<28} n={s['count']:<5} p50 {s['p50']:7.2f}  p95 {s['p95']:7.2f}  "
        f"p99 {s['p99']:7.2f}  max {s['max']:7.2f} ms"
    )


class Population:
    """Seeded random creators with realistic skew (power-law followers, Zipf-ish categories)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.py = random.Random(seed)
        self.categories = [f"cat-{i:02d}" for i in range(N_CATEGORIES)]
        weights = 1 / np.arange(1, N_CATEGORIES + 1) ** 0.8
        self.cat_p = weights / weights.sum()
        self.mcns = [f"mcn-{i:03d}" for i in range(N_MCNS)]
        mcn_w = 1 / np.arange(1, N_MCNS + 1) ** 1.1
        self.mcn_p = mcn_w / mcn_w.sum()
        words = self._words(900)
        self.first_names = [w.title() for w in words[:300]]
        self.last_names = [w.title() for w in words[300:]]
        self.issued = 0

    def _words(self, count: int) -> list[str]:
        seen: dict[str, None] = {}
        while len(seen) < count:
            k = self.py.choice((2, 2, 3, 3, 4))
            seen["".join(self.py.choice(SYLLABLES) for _ in range(k))] = None
        return list(seen)

    def make(self, count: int) -> list[CreatorSummary]:
        """count new creators with fresh ids (vectorised draws, then one dataclass each)."""
        rng = self.rng
        followers = np.minimum((100 * (rng.pareto(1.1, count) + 1)).astype(np.int64), 200_000_000)
        score = np.round(100 * rng.beta(2.0, 3.0, count), 2)
        gmv = (rng.lognormal(12, 2.5, count) * (rng.random(count) > 0.2)).astype(np.int64)
        gpm = (rng.lognormal(8, 1.5, count) * (gmv > 0)).astype(np.int64)
        n_cats = rng.integers(1, 4, count)
        mcn_idx = np.where(
            rng.random(count) < 0.4, -1, rng.choice(N_MCNS, size=count, p=self.mcn_p)
        )
        ids = rng.integers(0, 2**40, count)
        cat_draws = rng.choice(N_CATEGORIES, size=(count, 6), p=self.cat_p).tolist()
        cat_scores = np.round(100 * rng.random((count, 3)), 2).tolist()
        first = rng.integers(0, len(self.first_names), count).tolist()
        last = rng.integers(0, len(self.last_names), count).tolist()
        suffix = rng.integers(0, len(SUFFIXES), count).tolist()
        tiers = rng.integers(0, 9, count).tolist()
        flagged = (rng.random(count) < 0.02).tolist()
        out: list[CreatorSummary] = []
        for i in range(count):
            picked = list(dict.fromkeys(cat_draws[i]))[: int(n_cats[i])]
            cats = tuple(sorted(self.categories[c] for c in picked))
            mcn = int(mcn_idx[i])
            out.append(
                CreatorSummary(
                    creator_id=f"cr-{self.issued + i:07d}-{int(ids[i]):010x}",
                    display_name=(
                        f"{self.first_names[first[i]]} {self.last_names[last[i]]}"
                        f"{SUFFIXES[suffix[i]]}"
                    ),
                    followers=int(followers[i]),
                    mcn="" if mcn < 0 else self.mcns[mcn],
                    categories=cats,
                    score=float(score[i]),
                    gmv_minor=int(gmv[i]),
                    gpm_minor=int(gpm[i]),
                    category_scores={c: cat_scores[i][k] for k, c in enumerate(cats)},
                    tier=tiers[i],
                    flagged=flagged[i],
                )
            )
        self.issued += count
        return out

    def rescored(self, s: CreatorSummary) -> CreatorSummary:
        """The same creator after a score change (what most upserts are)."""
        py = self.py
        return replace(
            s,
            score=round(min(100.0, max(0.0, s.score + py.gauss(0, 2))), 2),
            gmv_minor=s.gmv_minor + py.randrange(0, 50_000),
            gpm_minor=max(0, s.gpm_minor + py.randrange(-500, 500)),
            followers=s.followers + py.randrange(0, 50),
            category_scores={c: round(py.uniform(0, 100), 2) for c in s.categories},
        )

    def moved(self, s: CreatorSummary) -> CreatorSummary:
        """The same creator active in other categories and under another MCN."""
        cats = tuple(sorted(set(self.py.sample(self.categories, self.py.randint(1, 3)))))
        return replace(
            s,
            categories=cats,
            mcn=self.py.choice(["", *self.mcns]),
            category_scores={c: round(self.py.uniform(0, 100), 2) for c in cats},
            score=round(self.py.uniform(0, 100), 2),
        )


def random_query(pop: Population, creators: list[CreatorSummary]) -> dict[str, Any]:
    """A SearchCreators request as a marketplace page would send it."""
    py = pop.py
    q: dict[str, Any] = {"sort": py.choice(SORTS), "limit": py.choice((20, 20, 20, 50, 100))}
    if py.random() < 0.5:
        q["category"] = pop.categories[int(pop.rng.choice(N_CATEGORIES, p=pop.cat_p))]
    if py.random() < 0.3:
        q["min_followers"] = py.choice((1_000, 10_000, 100_000, 1_000_000))
    if py.random() < 0.15:
        q["max_followers"] = py.choice((5_000, 50_000, 500_000))
    if py.random() < 0.2:
        q["mcn"] = pop.mcns[int(pop.rng.choice(N_MCNS, p=pop.mcn_p))]
    if py.random() < 0.2:
        q["min_score"] = py.choice((30.0, 50.0, 70.0, 90.0))
    if py.random() < 0.2:
        s = py.choice(creators)
        kind = py.random()
        if kind < 0.5:  # a name someone remembers part of
            word = py.choice(s.display_name.split())
            start = py.randrange(max(1, len(word) - 2))
            q["text"] = word[start : start + py.randint(3, 6)]
        elif kind < 0.8:  # the whole name
            q["text"] = s.display_name
        else:  # a pasted id fragment
            q["text"] = s.creator_id[py.randrange(3, 12) :][:8]
    r = py.random()
    q["offset"] = (
        0 if r < 0.6 else (py.randrange(1, 10) * q["limit"] if r < 0.9 else py.randrange(10_000))
    )
    return q


def brute_force(creators: list[CreatorSummary], q: dict[str, Any]) -> tuple[list[str], int]:
    """The same query in plain Python over every creator: the bench checks a few answers."""
    attr = {"score": "score", "followers": "followers", "gmv": "gmv_minor", "gpm": "gpm_minor"}
    words = q.get("text", "").casefold().split()
    hits = [
        s
        for s in creators
        if (not q.get("category") or q["category"] in s.categories)
        and (not q.get("min_followers") or s.followers >= q["min_followers"])
        and (not q.get("max_followers") or s.followers <= q["max_followers"])
        and (not q.get("mcn") or s.mcn == q["mcn"])
        and (not q.get("min_score") or s.score >= q["min_score"])
        and all(w in s.display_name.casefold() or w in s.creator_id.casefold() for w in words)
    ]
    hits.sort(key=lambda s: (-getattr(s, attr[q["sort"]]), s.creator_id))
    page = hits[q["offset"] : q["offset"] + q["limit"]]
    return [s.creator_id for s in page], len(hits)


def query_class(q: dict[str, Any]) -> str:
    if q.get("text"):
        return "with text"
    if any(q.get(k) for k in ("category", "min_followers", "max_followers", "mcn", "min_score")):
        return "numeric filters only"
    return "no filter"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--creators", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=1_000)
    parser.add_argument("--tops", type=int, default=1_000)
    parser.add_argument("--upserts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check", type=int, default=5, help="queries checked by brute force")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    facts = machine_facts()
    facts["numpy"] = np.__version__
    print(f"creator search bench: {args.creators:,} creators, seed {args.seed}")
    print(
        f"  machine: {facts['nproc']} cores, {facts['cpu_model']}, python {facts['python']}, "
        f"numpy {np.__version__}"
    )

    load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())  # other work skews timings
    pop = Population(args.seed)
    rss0 = rss_mib()
    t0 = time.perf_counter()
    creators = pop.make(args.creators)
    gen_s = time.perf_counter() - t0
    rss1 = rss_mib()
    print(f"  generated {len(creators):,} summaries in {gen_s:.1f} s (+{rss1 - rss0:,.0f} MiB)")

    index = ScoreIndex()
    t0 = time.perf_counter()
    for s in creators:
        index.upsert(s)
    build_s = time.perf_counter() - t0
    rss2 = rss_mib()
    np_mib = numpy_bytes(index) / 2**20
    print(
        f"  build: {build_s:.1f} s ({len(creators) / build_s:,.0f} upserts/s), index RSS "
        f"+{rss2 - rss1:,.0f} MiB (numpy columns {np_mib:,.0f} MiB; summaries not counted)"
    )
    # What a service should do after its initial load: the million long-lived objects then no
    # longer make the cyclic GC's full collections (which scan them all) run during requests.
    gc.collect()
    gc.freeze()

    queries = [random_query(pop, creators) for _ in range(args.searches)]
    for q in queries[:10]:  # warm-up (page faults, first allocations); not counted
        index.search(**q)
    search_ms: list[float] = []
    by_class: dict[str, list[float]] = {}
    by_sort: dict[str, list[float]] = {}
    worst: list[tuple[float, dict[str, Any], int]] = []
    totals: list[int] = []
    for q in queries:
        ms, (_, total) = timed(partial(index.search, **q))
        search_ms.append(ms)
        totals.append(total)
        by_class.setdefault(query_class(q), []).append(ms)
        by_sort.setdefault(q["sort"], []).append(ms)
        worst.append((ms, q, total))
    worst.sort(key=lambda w: -w[0])

    mismatches = 0
    for q in queries[: args.check]:
        page, total = index.search(**q)
        if ([s.creator_id for s in page], total) != brute_force(creators, q):
            mismatches += 1
            print(f"  MISMATCH against brute force: {q}")
    print(f"  {args.check} searches checked against brute force: {mismatches} mismatches")

    top_ms: list[float] = []
    for _ in range(args.tops):
        category = pop.py.choice(pop.categories)
        n = pop.py.choice((10, 20, 50, 100))
        ms, _ = timed(partial(index.top, category, n))
        top_ms.append(ms)
    # GetCreator's category ranks: one rank() per category of the creator.
    rank_ms: list[float] = []
    for _ in range(args.tops):
        someone = pop.py.choice(creators)
        for category in someone.categories:
            ms, _ = timed(partial(index.rank, category, someone.creator_id))
            rank_ms.append(ms)

    chosen = [pop.py.choice(creators) for _ in range(args.upserts)]
    kinds = [pop.py.random() for _ in range(args.upserts)]
    n_new = sum(1 for k in kinds if k >= 0.95)
    fresh = iter(pop.make(n_new))
    batch = [
        pop.rescored(s) if k < 0.9 else pop.moved(s) if k < 0.95 else next(fresh)
        for s, k in zip(chosen, kinds, strict=True)
    ]
    kind_of = ["rescore" if k < 0.9 else "move" if k < 0.95 else "new" for k in kinds]
    per_kind: dict[str, float] = {}
    t0 = time.perf_counter()
    for s, kind in zip(batch, kind_of, strict=True):
        start = time.perf_counter()
        index.upsert(s)
        per_kind[kind] = per_kind.get(kind, 0.0) + time.perf_counter() - start
    upsert_s = time.perf_counter() - t0
    counts = {k: kind_of.count(k) for k in per_kind}

    search_stats = stats_ms(search_ms)
    top_stats = stats_ms(top_ms)
    met = search_stats["p99"] <= TARGET_P99_MS and top_stats["p99"] <= TARGET_P99_MS
    print(
        f"  searches (matches per query: median {int(np.median(totals)):,}, max {max(totals):,}):"
    )
    print(fmt("search (all)", search_stats))
    for name in sorted(by_class):
        print(fmt(f"  {name}", stats_ms(by_class[name])))
    for name in SORTS:
        print(fmt(f"  sort={name}", stats_ms(by_sort.get(name, []))))
    print(fmt("top()", top_stats))
    print(fmt("rank()", stats_ms(rank_ms)))
    print("  slowest searches:")
    for ms, q, total in worst[:5]:
        print(f"    {ms:7.2f} ms  {total:>9,} matches  {q}")
    print(
        f"  upserts: {args.upserts:,} in {upsert_s:.2f} s = {args.upserts / upsert_s:,.0f}/s; "
        + ", ".join(
            f"{k} {counts[k]:,} at {per_kind[k] / counts[k] * 1e6:.1f} us" for k in sorted(counts)
        )
    )
    print(f"  index now holds {len(index):,} creators; RSS {rss_mib():,.0f} MiB")
    load = os.getloadavg()
    print(
        f"  load average (1/5/15 min) before {load_before}, after {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}"
    )
    print(
        f"  target p99 <= {TARGET_P99_MS:.0f} ms: search {search_stats['p99']:.2f} ms, "
        f"top {top_stats['p99']:.2f} ms -> {'MET' if met else 'NOT MET'}"
    )

    result: dict[str, Any] = {
        "machine": facts,
        "creators": args.creators,
        "seed": args.seed,
        "generate_s": round(gen_s, 2),
        "build_s": round(build_s, 2),
        "build_upserts_per_s": round(len(creators) / build_s),
        "index_rss_mib": round(rss2 - rss1),
        "numpy_columns_mib": round(np_mib),
        "search_ms": search_stats,
        "search_ms_by_class": {k: stats_ms(v) for k, v in by_class.items()},
        "search_ms_by_sort": {k: stats_ms(v) for k, v in by_sort.items()},
        "top_ms": top_stats,
        "rank_ms": stats_ms(rank_ms),
        "upserts": args.upserts,
        "upserts_per_s": round(args.upserts / upsert_s),
        "upsert_us_by_kind": {k: round(per_kind[k] / counts[k] * 1e6, 2) for k in counts},
        "target_p99_ms": TARGET_P99_MS,
        "target_met": met,
        "brute_force_checked": args.check,
        "brute_force_mismatches": mismatches,
        "load_average_after": os.getloadavg(),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    os.chdir(REPO)
    main()
