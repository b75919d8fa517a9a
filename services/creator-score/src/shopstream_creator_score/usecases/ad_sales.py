"""A creator's ad-credited sales leave only thresholded and noised (docs/ads.md, "one door").

`ad_sales` (orders and GMV an ad was credited for, and the organic share derived from them) is
a number derived from attributed conversions, so it follows the ads reports' rule: withheld
below k orders, discrete Laplace noise otherwise, exact only for the platform's audit
principals. The answer is fixed per creator and budget epoch: the first answer of an epoch is
kept (in this process) and returned again, and its noise is drawn from a keyed hash of the
creator, the epoch and the exact values, so another replica or a restart gives the same answer
for the same values and never a fresh draw to average.

Limits (docs/ads.md): the state sums orders' GMV without clipping each order, so the GMV noise
is scaled to `gmv_bound_minor` without that bound being enforced per order; and there is no
budget ledger here (one answer per creator, epoch and distinct exact value).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from collections import OrderedDict
from datetime import UTC, datetime

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopstream.creators.v1 import creators_pb2
from shopstream_platform.grpc.auth import Principal

DAY_S = 86_400


class AdSalesPrivacy(BaseSettings):
    """Env prefix SHOPSTREAM_CREATOR_SCORE_AD_SALES_ (kept beside the use case that applies it)."""

    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_CREATOR_SCORE_AD_SALES_")

    k_threshold: int = Field(default=5, ge=1)
    # Split evenly between the order count (sensitivity 1) and the GMV (sensitivity the bound).
    epsilon: float = Field(default=1.0, gt=0)
    gmv_bound_minor: int = Field(default=100_000, gt=0)
    epoch_days: int = Field(default=7, ge=1)
    audit_principals: list[str] = ["service:audit", "admin:audit"]
    # Answers kept per process (per creator and epoch), oldest dropped first.
    cache_size: int = Field(default=200_000, ge=1)


def is_audit(principal: Principal | None, audit_principals: list[str]) -> bool:
    return (
        principal is not None
        and principal.is_admin
        and f"{principal.role}:{principal.id}" in audit_principals
    )


def discrete_laplace(scale: float, rng: random.Random) -> int:
    """P(x) proportional to exp(-|x| / scale): a difference of two geometrics."""
    alpha = math.exp(-1.0 / scale)

    def geometric() -> int:
        return math.floor(math.log(1.0 - rng.random()) / math.log(alpha))

    return geometric() - geometric()


class AdSalesReleaser:
    def __init__(self, key: bytes, privacy: AdSalesPrivacy) -> None:
        self._key = hmac.new(key, b"creator-score/ad-sales", hashlib.sha256).digest()
        self._p = privacy
        self._answers: OrderedDict[tuple[str, int], creators_pb2.AdSales] = OrderedDict()

    def apply(
        self, creator: creators_pb2.Creator, principal: Principal | None, now: datetime
    ) -> None:
        """Replace the creator's exact ad_sales by the released one (unless audit)."""
        if is_audit(principal, self._p.audit_principals):
            return
        epoch = int(now.astimezone(UTC).timestamp()) // (self._p.epoch_days * DAY_S)
        key = (creator.creator_id, epoch)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._release(creator, epoch)
            self._answers[key] = answer
            while len(self._answers) > self._p.cache_size:
                self._answers.popitem(last=False)
        creator.ad_sales.CopyFrom(answer)
        net = creator.gmv.amount_minor
        if not answer.withheld and net > 0:
            # Derived from the released GMV (post-processing), against the public net GMV.
            share = 1.0 - min(1.0, answer.gmv.amount_minor / net)
            creator.ad_sales.organic_share = round(share, 4)

    def _release(self, creator: creators_pb2.Creator, epoch: int) -> creators_pb2.AdSales:
        exact = creator.ad_sales
        out = creators_pb2.AdSales(noised=True)
        out.gmv.currency = exact.gmv.currency
        if exact.orders < self._p.k_threshold:
            out.withheld = True
            return out
        seed = hmac.new(
            self._key,
            f"{creator.creator_id}|{epoch}|{exact.orders}|{exact.gmv.amount_minor}".encode(),
            hashlib.sha256,
        ).digest()
        rng = random.Random(int.from_bytes(seed, "big"))
        half = self._p.epsilon / 2.0
        out.orders = max(0, exact.orders + discrete_laplace(1.0 / half, rng))
        out.gmv.amount_minor = max(
            0, exact.gmv.amount_minor + discrete_laplace(self._p.gmv_bound_minor / half, rng)
        )
        return out
