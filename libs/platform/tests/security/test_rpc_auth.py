"""Who may call what, on every RPC of every service, from the protos' service descriptors.

`EXPECTED` names each RPC's access rule: `public` (no token needed), `read` (a signed-in caller
of a role the policy allows), `role` (only admin/service: any other role is refused) or `owner`
(a mutation on a principal's own resource: another principal of the same role is refused). The
table must list exactly the RPCs the generated descriptors have, so a new RPC (or service) fails
the first test until someone decides its rule, and every `owner` RPC must have a case below.

Against the real services (the session's, conftest.py `services`, on the session's own broker):
- every RPC that needs a token answers UNAUTHENTICATED with no token, an expired one, one signed
  with another secret, of another issuer, of another audience, or a malformed one (and a public
  RPC refuses such a token too rather than ignore it), while a good token of an allowed role is
  not refused: the control that the token alone decided;
- every role the service's policy does not allow for an RPC gets PERMISSION_DENIED;
- every `owner` RPC called by another principal of the owner's role on the owner's resource (a
  seller's product, a buyer's order, a creator's live session, an advertiser's campaign, ...)
  gets PERMISSION_DENIED; the case's request is otherwise valid, so only ownership refuses it.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import jwt
import pytest
from ads_steps import usd
from catalog_steps import a_product_request
from commerce_steps import Shop
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import shopstream
from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as apb
from shopstream.catalog.v1 import catalog_service_pb2 as cpb
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_ads.api.policy import POLICY as ADS_POLICY
from shopstream_catalog.api.policy import POLICY as CATALOG_POLICY
from shopstream_commerce.api.policy import POLICY as COMMERCE_POLICY
from shopstream_creator_score.api.policy import POLICY as CREATOR_POLICY
from shopstream_platform.grpc.auth import ROLES, AccessPolicy
from shopstream_platform.settings import AuthSettings

if TYPE_CHECKING:
    from conftest import Endpoint, Services

pytestmark = pytest.mark.security
# The tests that call the services run in the session's event loop, where those run (conftest.py).
in_services_loop = pytest.mark.asyncio(loop_scope="session")

PUBLIC, READ, ROLE, OWNER = "public", "read", "role", "owner"
CATALOG = "shopstream.catalog.v1.CatalogService"
COMMERCE = "shopstream.commerce.v1.CommerceService"
ADS = "shopstream.ads.v1.AdsService"
CREATORS = "shopstream.creators.v1.CreatorScoreService"

POLICIES: dict[str, AccessPolicy] = {
    CATALOG: CATALOG_POLICY,
    COMMERCE: COMMERCE_POLICY,
    ADS: ADS_POLICY,
    CREATORS: CREATOR_POLICY,
}


def _rules(service: str, **rules: str) -> dict[str, str]:
    return {f"{service}.{method}": rule for method, rule in rules.items()}


EXPECTED: dict[str, str] = {
    **_rules(
        CATALOG,
        RegisterSeller=OWNER,
        GetSeller=PUBLIC,
        ListCategories=PUBLIC,
        CreateProduct=OWNER,
        UpdateProduct=OWNER,
        GetProduct=PUBLIC,
        BatchGetProducts=PUBLIC,
        SearchProducts=PUBLIC,
        AdjustStock=OWNER,
        ReviewListing=ROLE,
        GetSellerQuality=OWNER,
        RegisterWarehouse=OWNER,
        ListWarehouses=PUBLIC,
        EnrolSku=OWNER,
        AnnounceInbound=OWNER,
        ReceiveInbound=ROLE,
        GetInbound=OWNER,
        ListInbound=OWNER,
    ),
    **_rules(
        COMMERCE,
        PlaceOrder=OWNER,
        GetOrder=OWNER,
        ListOrders=OWNER,
        PayOrder=OWNER,
        CancelOrder=OWNER,
        ShipOrder=OWNER,
        ConfirmDelivery=OWNER,
        ShipPackage=OWNER,
        ListPackages=OWNER,
        RequestRefund=OWNER,
        ApproveRefund=OWNER,
        RejectRefund=OWNER,
        ShipReturn=OWNER,
        ReceiveReturn=OWNER,
        EscalateRefund=OWNER,
        ScheduleLiveSession=OWNER,
        StartLiveSession=OWNER,
        PinProduct=OWNER,
        EndLiveSession=OWNER,
        GetLiveSession=PUBLIC,
        StartFlashSale=OWNER,
        GetFlashSale=PUBLIC,
        SetCommissionRate=OWNER,
        GetCreatorEarnings=OWNER,
        ApproveCreator=OWNER,
        GetOrderSettlement=OWNER,
        GetSellerBalance=OWNER,
        CheckLeaks=ROLE,
    ),
    **_rules(
        ADS,
        CreateCampaign=OWNER,
        GetCampaign=OWNER,
        ListCampaigns=OWNER,
        PauseCampaign=OWNER,
        ResumeCampaign=OWNER,
        SelectAds=ROLE,
        RecordImpression=ROLE,
        RecordClick=ROLE,
        GetCampaignReport=OWNER,
        GetAttributionSettings=PUBLIC,
    ),
    **_rules(CREATORS, GetCreator=READ, SearchCreators=READ, TopCreators=READ, WatchScores=READ),
}


def proto_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of every service in the generated protos, by `<service>.<method>`."""
    methods: dict[str, MethodDescriptor] = {}
    for module in pkgutil.walk_packages(shopstream.__path__, "shopstream."):
        if not module.name.endswith("_pb2"):
            continue
        for service in importlib.import_module(module.name).DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"{service.full_name}.{method.name}"] = method
    return methods


def test_the_table_names_every_rpc_of_the_protos_and_agrees_with_the_policies() -> None:
    methods = proto_methods()
    assert len(methods) >= 60, len(methods)
    missing = sorted(set(methods) - set(EXPECTED))
    assert not missing, f"RPCs without an access rule in EXPECTED (decide one): {missing}"
    unknown = sorted(set(EXPECTED) - set(methods))
    assert not unknown, f"EXPECTED names RPCs the protos do not have: {unknown}"
    services = {name.rsplit(".", 1)[0] for name in methods}
    assert services == set(POLICIES), services
    for name, rule in EXPECTED.items():
        service, method = name.rsplit(".", 1)
        allowed = POLICIES[service].allowed_roles(method)
        if rule == PUBLIC:
            assert allowed is None, f"{name} is public in the table but needs a token"
            continue
        assert allowed is not None, f"{name} needs a token in the table but is public"
        if rule == ROLE:
            assert allowed <= {"admin", "service"}, f"{name}: {sorted(allowed)}"
    owner_cases = {
        *(f"{CATALOG}.{m}" for m in CATALOG_OWNER_CASES),
        *(f"{COMMERCE}.{m}" for m in COMMERCE_OWNER_CASES),
        *(f"{ADS}.{m}" for m in ADS_OWNER_CASES),
    }
    owners = {name for name, rule in EXPECTED.items() if rule == OWNER}
    assert owners == owner_cases, (sorted(owners - owner_cases), sorted(owner_cases - owners))


# --- calling any RPC by its descriptor -------------------------------------------------------


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def code_of(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    metadata: tuple[tuple[str, str], ...] = (),
    request: Message | None = None,
) -> grpc.StatusCode:
    """The status one call answers (OK when it succeeded or a stream sent a first message)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    body = request if request is not None else GetMessageClass(method.input_type)()
    serialize: Callable[[Message], bytes] = lambda m: m.SerializeToString()  # noqa: E731
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=serialize)
            async for _ in stream(body, metadata=metadata, timeout=3):
                break
        else:
            unary = channel.unary_unary(path, request_serializer=serialize)
            await unary(body, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def bad_tokens(auth: AuthSettings, role: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Every way a caller of an allowed role can present a token that must not count."""
    secret = auth.jwt_secret.get_secret_value()
    now = int(time.time())
    good = {"sub": "caller-1", "role": role, "iss": auth.issuer, "aud": auth.audience}

    def signed(claims: dict[str, Any], key: str = secret) -> tuple[tuple[str, str], ...]:
        return _bearer(jwt.encode(claims, key, algorithm="HS256"))

    return {
        "no token": (),
        "expired": signed({**good, "iat": now - 600, "exp": now - 60}),
        "wrongly signed": signed({**good, "iat": now, "exp": now + 600}, "x" * 40),
        "other issuer": signed({**good, "iss": "not-shopstream", "iat": now, "exp": now + 600}),
        "other audience": signed({**good, "aud": "another-app", "iat": now, "exp": now + 600}),
        "malformed": _bearer("not.a.jwt"),
        "not bearer": (("authorization", "Basic dXNlcjpwdw=="),),
    }


def good_token(auth: AuthSettings, role: str) -> tuple[tuple[str, str], ...]:
    now = int(time.time())
    claims = {
        "sub": "caller-1",
        "role": role,
        "iss": auth.issuer,
        "aud": auth.audience,
        "iat": now,
        "exp": now + 600,
    }
    return _bearer(jwt.encode(claims, auth.jwt_secret.get_secret_value(), algorithm="HS256"))


async def check_tokens_and_roles(api: Endpoint) -> list[str]:
    """Every RPC of the service against bad tokens and refused roles; returns what went wrong."""
    channel, service, auth = api.channel, api.service, api.auth
    policy = POLICIES[service]
    wrong: list[str] = []
    methods = {n: m for n, m in proto_methods().items() if n.startswith(service + ".")}
    for name, method in sorted(methods.items()):
        allowed = policy.allowed_roles(method.name)
        role = "admin" if allowed is None else sorted(allowed)[0]
        for flaw, metadata in bad_tokens(auth, role).items():
            if allowed is None and flaw == "no token":
                continue
            code = await code_of(channel, method, metadata)
            if code != grpc.StatusCode.UNAUTHENTICATED:
                wrong.append(f"{name} with {flaw}: {code.name}")
        control = await code_of(channel, method, good_token(auth, role))
        if control in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED):
            wrong.append(f"{name} with a good {role} token: {control.name}")
        if allowed is None:
            anonymous = await code_of(channel, method)
            if anonymous in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                wrong.append(f"public {name} without a token: {anonymous.name}")
            continue
        for refused in sorted(ROLES - allowed):
            code = await code_of(channel, method, good_token(auth, refused))
            if code != grpc.StatusCode.PERMISSION_DENIED:
                wrong.append(f"{name} as {refused} (not allowed): {code.name}")
    return wrong


# --- another principal's resource ------------------------------------------------------------

OwnerCase = Callable[..., Awaitable[Any]]


async def refused(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _ids() -> Callable[[str], str]:
    run = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{run}"


class CatalogCases:
    """A seller's resources in catalog, and the calls another seller makes on them."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.id = _ids()
        self.seller, self.other = self.id("seller"), self.id("other-seller")

    async def setup(self) -> None:
        shop = self.shop
        self.product = await shop.listed_product(self.seller, stock=10)
        self.sku = self.product.skus[0].sku_id
        self.warehouse = self.id("fbt")
        await shop.catalog_stub.RegisterWarehouse(
            cpb.RegisterWarehouseRequest(
                warehouse_id=self.warehouse, display_name="FBT", region="GB-MAN", platform=True
            ),
            metadata=shop.auth("admin", "ops"),
            timeout=10,
        )
        await shop.catalog_stub.EnrolSku(
            cpb.EnrolSkuRequest(sku_id=self.sku, warehouse_id=self.warehouse),
            metadata=shop.auth("seller", self.seller),
            timeout=10,
        )
        announced = await shop.catalog_stub.AnnounceInbound(
            cpb.AnnounceInboundRequest(
                seller_id=self.seller,
                warehouse_id=self.warehouse,
                lines=[cpb.InboundLineRequest(sku_id=self.sku, quantity=10)],
                idempotency_key=self.id("own-asn"),
            ),
            metadata=shop.auth("seller", self.seller),
            timeout=10,
        )
        self.inbound = announced.shipment.inbound_id

    def as_other(self) -> dict[str, Any]:
        return {"metadata": self.shop.auth("seller", self.other), "timeout": 10}


CATALOG_OWNER_CASES: dict[str, Callable[[CatalogCases], Awaitable[Any]]] = {
    "RegisterSeller": lambda c: c.shop.catalog_stub.RegisterSeller(
        cpb.RegisterSellerRequest(seller_id=c.seller, display_name="Mine now", country="GB"),
        **c.as_other(),
    ),
    "CreateProduct": lambda c: c.shop.catalog_stub.CreateProduct(
        a_product_request(c.seller), **c.as_other()
    ),
    "UpdateProduct": lambda c: c.shop.catalog_stub.UpdateProduct(
        cpb.UpdateProductRequest(
            product_id=c.product.product_id, title="Taken over", expected_version=c.product.version
        ),
        **c.as_other(),
    ),
    "AdjustStock": lambda c: c.shop.catalog_stub.AdjustStock(
        cpb.AdjustStockRequest(sku_id=c.sku, warehouse_id="w1", delta=-5, reason="mine"),
        **c.as_other(),
    ),
    "GetSellerQuality": lambda c: c.shop.catalog_stub.GetSellerQuality(
        cpb.GetSellerQualityRequest(seller_id=c.seller), **c.as_other()
    ),
    "RegisterWarehouse": lambda c: c.shop.catalog_stub.RegisterWarehouse(
        cpb.RegisterWarehouseRequest(
            warehouse_id=c.id("wh"), display_name="Theirs", region="GB-LON", seller_id=c.seller
        ),
        **c.as_other(),
    ),
    "EnrolSku": lambda c: c.shop.catalog_stub.EnrolSku(
        cpb.EnrolSkuRequest(sku_id=c.sku, warehouse_id=c.warehouse), **c.as_other()
    ),
    "AnnounceInbound": lambda c: c.shop.catalog_stub.AnnounceInbound(
        cpb.AnnounceInboundRequest(
            seller_id=c.seller,
            warehouse_id=c.warehouse,
            lines=[cpb.InboundLineRequest(sku_id=c.sku, quantity=10)],
            idempotency_key=c.id("asn"),
        ),
        **c.as_other(),
    ),
    "GetInbound": lambda c: c.shop.catalog_stub.GetInbound(
        cpb.GetInboundRequest(inbound_id=c.inbound), **c.as_other()
    ),
    "ListInbound": lambda c: c.shop.catalog_stub.ListInbound(
        cpb.ListInboundRequest(seller_id=c.seller), **c.as_other()
    ),
}


class CommerceCases:
    """A buyer's paid order with a refund request, its seller's package, a creator's live
    session; the calls made by another buyer, seller or creator."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.id = _ids()
        self.seller, self.buyer, self.creator = self.id("seller"), self.id("buyer"), self.id("cr")
        self.other = {r: self.id(f"other-{r}") for r in ("seller", "buyer", "creator")}

    async def setup(self) -> None:
        shop = self.shop
        self.product = await shop.listed_product(self.seller, stock=50, price=1_500)
        self.sku = self.product.skus[0].sku_id
        self.order = await shop.place(self.buyer, self.sku, key=self.id("order"))
        await shop.wait_state(self.order, order_pb2.ORDER_STATE_RESERVED)
        as_buyer = {"metadata": shop.auth("buyer", self.buyer), "timeout": 10}
        self.paid = await shop.place(self.buyer, self.sku, key=self.id("paid"))
        await shop.wait_state(self.paid, order_pb2.ORDER_STATE_RESERVED)
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=self.paid.order_id, card_token="tok_visa"), **as_buyer
        )
        asked = await shop.stub.RequestRefund(
            pb.RequestRefundRequest(
                order_id=self.paid.order_id, reason="ordered twice", type=pb.AFTER_SALE_TYPE_CANCEL
            ),
            **as_buyer,
        )
        self.refund = asked.refund.refund_id
        packages = await shop.stub.ListPackages(
            pb.ListPackagesRequest(order_id=self.order.order_id), **as_buyer
        )
        self.package = packages.packages[0].package_id if packages.packages else ""
        live = await shop.stub.StartLiveSession(
            pb.StartLiveSessionRequest(
                creator_id=self.creator, title="Haul", pinned_product_ids=[self.product.product_id]
            ),
            metadata=shop.auth("creator", self.creator),
            timeout=10,
        )
        self.session = live.session.live_session_id

    def as_other(self, role: str) -> dict[str, Any]:
        return {"metadata": self.shop.auth(role, self.other[role]), "timeout": 10}


def _schedule(c: CommerceCases) -> Awaitable[Any]:
    request = pb.ScheduleLiveSessionRequest(
        creator_id=c.creator, title="Later", pinned_product_ids=[c.product.product_id]
    )
    request.starts_at.FromSeconds(int(time.time()) + 7_200)
    return c.shop.stub.ScheduleLiveSession(request, **c.as_other("creator"))


COMMERCE_OWNER_CASES: dict[str, Callable[[CommerceCases], Awaitable[Any]]] = {
    "PlaceOrder": lambda c: c.shop.stub.PlaceOrder(
        pb.PlaceOrderRequest(
            buyer_id=c.buyer,
            idempotency_key=c.id("theirs"),
            lines=[pb.OrderLineRequest(sku_id=c.sku, quantity=1)],
        ),
        **c.as_other("buyer"),
    ),
    "GetOrder": lambda c: c.shop.stub.GetOrder(
        pb.GetOrderRequest(order_id=c.order.order_id), **c.as_other("buyer")
    ),
    "ListOrders": lambda c: c.shop.stub.ListOrders(
        pb.ListOrdersRequest(buyer_id=c.buyer), **c.as_other("buyer")
    ),
    "PayOrder": lambda c: c.shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=c.order.order_id, card_token="tok_visa"),
        **c.as_other("buyer"),
    ),
    "CancelOrder": lambda c: c.shop.stub.CancelOrder(
        pb.CancelOrderRequest(order_id=c.order.order_id, reason="not mine"),
        **c.as_other("buyer"),
    ),
    "ShipOrder": lambda c: c.shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=c.order.order_id, tracking_number="TRK-1"),
        **c.as_other("seller"),
    ),
    "ConfirmDelivery": lambda c: c.shop.stub.ConfirmDelivery(
        pb.ConfirmDeliveryRequest(order_id=c.order.order_id), **c.as_other("buyer")
    ),
    "ShipPackage": lambda c: c.shop.stub.ShipPackage(
        pb.ShipPackageRequest(package_id=c.package, tracking_number="TRK-2"),
        **c.as_other("seller"),
    ),
    "ListPackages": lambda c: c.shop.stub.ListPackages(
        pb.ListPackagesRequest(order_id=c.order.order_id), **c.as_other("buyer")
    ),
    "RequestRefund": lambda c: c.shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=c.paid.order_id, reason="free money", type=pb.AFTER_SALE_TYPE_CANCEL
        ),
        **c.as_other("buyer"),
    ),
    "ApproveRefund": lambda c: c.shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=c.refund), **c.as_other("seller")
    ),
    "RejectRefund": lambda c: c.shop.stub.RejectRefund(
        pb.RejectRefundRequest(
            refund_id=c.refund, reason=pb.REJECT_REASON_ALREADY_PACKED, note="no"
        ),
        **c.as_other("seller"),
    ),
    "ShipReturn": lambda c: c.shop.stub.ShipReturn(
        pb.ShipReturnRequest(refund_id=c.refund, tracking_number="RET-1"),
        **c.as_other("buyer"),
    ),
    "ReceiveReturn": lambda c: c.shop.stub.ReceiveReturn(
        pb.ReceiveReturnRequest(refund_id=c.refund), **c.as_other("seller")
    ),
    "EscalateRefund": lambda c: c.shop.stub.EscalateRefund(
        pb.EscalateRefundRequest(refund_id=c.refund, note="help"), **c.as_other("buyer")
    ),
    "ScheduleLiveSession": _schedule,
    "StartLiveSession": lambda c: c.shop.stub.StartLiveSession(
        pb.StartLiveSessionRequest(creator_id=c.creator, title="Theirs"),
        **c.as_other("creator"),
    ),
    "PinProduct": lambda c: c.shop.stub.PinProduct(
        pb.PinProductRequest(live_session_id=c.session, product_id=c.product.product_id),
        **c.as_other("creator"),
    ),
    "EndLiveSession": lambda c: c.shop.stub.EndLiveSession(
        pb.EndLiveSessionRequest(live_session_id=c.session), **c.as_other("creator")
    ),
    "StartFlashSale": lambda c: c.shop.stub.StartFlashSale(
        pb.StartFlashSaleRequest(
            live_session_id=c.session,
            sku_id=c.sku,
            deal_price=money_pb2.Money(amount_minor=1_000, currency="GBP"),
            total_units=5,
            per_buyer_limit=1,
            countdown_s=10,
            duration_s=60,
        ),
        **c.as_other("seller"),
    ),
    "SetCommissionRate": lambda c: c.shop.stub.SetCommissionRate(
        pb.SetCommissionRateRequest(
            seller_id=c.seller, product_id=c.product.product_id, rate_bps=1_000
        ),
        **c.as_other("seller"),
    ),
    "GetCreatorEarnings": lambda c: c.shop.stub.GetCreatorEarnings(
        pb.GetCreatorEarningsRequest(creator_id=c.creator), **c.as_other("creator")
    ),
    "ApproveCreator": lambda c: c.shop.stub.ApproveCreator(
        pb.ApproveCreatorRequest(
            seller_id=c.seller, product_id=c.product.product_id, creator_id=c.other["creator"]
        ),
        **c.as_other("seller"),
    ),
    "GetOrderSettlement": lambda c: c.shop.stub.GetOrderSettlement(
        pb.GetOrderSettlementRequest(order_id=c.paid.order_id), **c.as_other("seller")
    ),
    "GetSellerBalance": lambda c: c.shop.stub.GetSellerBalance(
        pb.GetSellerBalanceRequest(seller_id=c.seller), **c.as_other("seller")
    ),
}


class AdsCases:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.other = world.who("other-advertiser")

    async def setup(self) -> None:
        self.campaign: ads_pb2.Campaign = await self.world.campaign("advertiser")

    def as_other(self) -> dict[str, Any]:
        return {"metadata": self.world.auth("seller", self.other), "timeout": 10}


ADS_OWNER_CASES: dict[str, Callable[[AdsCases], Awaitable[Any]]] = {
    "CreateCampaign": lambda c: c.world.stub.CreateCampaign(
        apb.CreateCampaignRequest(
            request_id=c.world.next_id("req"),
            advertiser_id=c.campaign.advertiser_id,
            name="spent on their budget",
            promoted_product_ids=["prod-1"],
            bid_type=ads_pb2.BID_TYPE_CPC,
            bid=usd(100),
            daily_budget=usd(100_000),
            total_budget=usd(1_000_000),
        ),
        **c.as_other(),
    ),
    "GetCampaign": lambda c: c.world.stub.GetCampaign(
        apb.GetCampaignRequest(campaign_id=c.campaign.campaign_id), **c.as_other()
    ),
    "ListCampaigns": lambda c: c.world.stub.ListCampaigns(
        apb.ListCampaignsRequest(advertiser_id=c.campaign.advertiser_id), **c.as_other()
    ),
    "PauseCampaign": lambda c: c.world.stub.PauseCampaign(
        apb.PauseCampaignRequest(campaign_id=c.campaign.campaign_id), **c.as_other()
    ),
    "ResumeCampaign": lambda c: c.world.stub.ResumeCampaign(
        apb.ResumeCampaignRequest(campaign_id=c.campaign.campaign_id), **c.as_other()
    ),
    "GetCampaignReport": lambda c: c.world.stub.GetCampaignReport(
        apb.GetCampaignReportRequest(campaign_id=c.campaign.campaign_id), **c.as_other()
    ),
}


async def run_owner_cases(
    cases: Any, table: dict[str, Callable[[Any], Awaitable[Any]]]
) -> list[str]:
    wrong = []
    for method, case in table.items():
        code = await refused(case(cases))
        if code != grpc.StatusCode.PERMISSION_DENIED:
            wrong.append(f"{method} on another principal's resource: {code.name}")
    return wrong


# --- the services ----------------------------------------------------------------------------


@in_services_loop
async def test_catalog_and_commerce_check_who_calls_every_rpc(services: Services) -> None:
    wrong = await check_tokens_and_roles(services.catalog)
    wrong += await check_tokens_and_roles(services.commerce)
    catalog = CatalogCases(services.shop)
    await catalog.setup()
    wrong += await run_owner_cases(catalog, CATALOG_OWNER_CASES)
    commerce = CommerceCases(services.shop)
    await commerce.setup()
    wrong += await run_owner_cases(commerce, COMMERCE_OWNER_CASES)
    assert not wrong, "\n".join(wrong)


@in_services_loop
async def test_ads_checks_who_calls_every_rpc(services: Services) -> None:
    wrong = await check_tokens_and_roles(services.ads)
    cases = AdsCases(services.ads_world)
    await cases.setup()
    wrong += await run_owner_cases(cases, ADS_OWNER_CASES)
    assert not wrong, "\n".join(wrong)


@in_services_loop
async def test_creator_score_checks_who_calls_every_rpc(services: Services) -> None:
    wrong = await check_tokens_and_roles(services.creators)
    assert not wrong, "\n".join(wrong)
