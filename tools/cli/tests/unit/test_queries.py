"""Query commands: table formatting, --json, auth and deadlines, and gRPC error messages.

No shopstream service runs here: formatting is tested on hand-built responses, calls against an
in-process gRPC server that stands in for creator-score, and "not running" against a free port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as ads_pb
from shopstream.catalog.v1.catalog_pb2 import LISTING_STATUS_ACTIVE, Product, Sku
from shopstream.commerce.v1 import commerce_service_pb2 as commerce_pb
from shopstream.commerce.v1.order_pb2 import AttributionContext, Order, OrderLine
from shopstream.common.v1.money_pb2 import Money
from shopstream.creators.v1 import creator_score_service_pb2 as creators_pb
from shopstream.creators.v1 import creator_score_service_pb2_grpc as creators_grpc
from shopstream.creators.v1.creators_pb2 import Creator, ScoreComponents
from shopstream_cli import campaigns, creators, orders, products
from shopstream_cli.main import CliSettings, run
from shopstream_cli.output import minor_units, money
from shopstream_cli.rpc import Target, describe_status, parse_principal
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.testing import free_port


def gbp(minor: int) -> Money:
    return Money(amount_minor=minor, currency="GBP")


# --- formatting -----------------------------------------------------------------------------------


def test_money_is_exact_minor_units() -> None:
    assert money(gbp(1999)) == "19.99 GBP"
    assert money(gbp(-250)) == "-2.50 GBP"
    assert money(gbp(123456789)) == "1,234,567.89 GBP"
    assert money(Money(amount_minor=500, currency="JPY")) == "500 JPY"
    assert money(Money()) == ""
    assert minor_units(39366, "") == "393.66"


def test_creator_rows() -> None:
    creator = Creator(
        creator_id="c-1",
        display_name="Ada",
        followers=120000,
        categories=["beauty", "home"],
        score=72.46,
        tier=6,
        gmv=gbp(150000),
        gpm_minor=1648,
        flags=["VIEWS_FAR_BELOW_FOLLOWERS"],
        components=ScoreComponents(sales=80, authenticity=50),
    )
    [row] = creators.creator_rows([creator])
    assert row == (
        1,
        "c-1",
        "Ada",
        "72.5",
        "L6",
        "120,000",
        "1,500.00 GBP",
        "16.48 GBP",
        "beauty, home",
        "VIEWS_FAR_BELOW_FOLLOWERS",
    )
    assert ("authenticity", "50.0") in creators.component_rows(creator)
    assert ("flags", "VIEWS_FAR_BELOW_FOLLOWERS") in creators.creator_fields(creator)
    assert ("live sessions", "none") in creators.creator_fields(creator)
    creator.live.sessions, creator.live.peak_viewers = 3, 1_200
    creator.ad_sales.gmv.CopyFrom(Money(amount_minor=50_000, currency="GBP"))
    creator.ad_sales.orders, creator.ad_sales.organic_share = 7, 0.6667
    fields = dict(creators.creator_fields(creator))
    assert fields["live sessions"] == "3 (peak 1,200 viewers)"
    assert fields["ad-credited gmv"] == "500.00 GBP over 7 orders (67% of gmv organic)"


def test_creator_query_maps_sort_and_page() -> None:
    request = creators.CreatorQuery(text="ada", sort="gpm", limit=5, page_token="Mg").request()
    assert request.sort_by == creators_pb.SORT_BY_GPM
    assert (request.page.page_size, request.page.page_token) == (5, "Mg")


def test_order_fields_and_lines() -> None:
    order = Order(
        order_id="o-1",
        buyer_id="b-1",
        state=4,
        total=gbp(3998),
        version=3,
        lines=[
            OrderLine(
                line_id="l-1",
                sku_id="s-1",
                product_id="p-1",
                seller_id="seller-1",
                quantity=2,
                unit_price=gbp(1999),
                line_total=gbp(3998),
                category_id="beauty",
                attribution=AttributionContext(creator_id="c-1", ad_click_id="click-9"),
            )
        ],
    )
    response = commerce_pb.GetOrderResponse(
        order=order, rejection_reason="out of stock", rejected_sku_id="s-1"
    )
    fields = dict(orders.order_fields(response))
    assert fields["state"] == "PAID"
    assert fields["seller"] == "seller-1"
    assert fields["total"] == "39.98 GBP"
    assert fields["rejected"] == "out of stock (SKU s-1)"
    assert orders.line_rows(order)[0][-1] == "creator c-1, ad click click-9"


def test_product_rows_show_the_cheapest_price() -> None:
    product = Product(
        product_id="p-1",
        title="Earbuds",
        status=LISTING_STATUS_ACTIVE,
        skus=[Sku(price=gbp(2999), available=3), Sku(price=gbp(1999), available=4)],
    )
    [row] = products.product_rows([product])
    assert row[5:] == ("ACTIVE", "from 19.99 GBP", 7, 2)


def test_campaign_rows() -> None:
    campaign = ads_pb2.Campaign(
        campaign_id="cmp-1",
        status=ads_pb2.CAMPAIGN_STATUS_ACTIVE,
        bid_type=ads_pb2.BID_TYPE_CPC,
        bid=gbp(45),
        spent_total=gbp(12000),
    )
    [row] = campaigns.campaign_rows([campaign])
    assert row[3:5] == ("ACTIVE", "0.45 GBP CPC")
    assert row[-1] == "120.00 GBP"


def test_report_hides_conversions_below_k() -> None:
    shown = ads_pb.ReportRow(
        day="2025-01-15",
        impressions=10000,
        clicks=250,
        ctr=0.025,
        spend=gbp(5000),
        attributed_orders=12,
        attributed_gmv=gbp(24000),
        roas=4.8,
    )
    hidden = ads_pb.ReportRow(
        day="2025-01-16", impressions=10, spend=gbp(10), conversions_suppressed=True
    )
    response = ads_pb.GetCampaignReportResponse(
        campaign_id="cmp-1", days=[shown, hidden], total=shown, k_threshold=5, model_version="v1"
    )
    rows = campaigns.report_rows(response)
    assert rows[0] == (
        "2025-01-15",
        "10,000",
        "250",
        "2.50%",
        "50.00 GBP",
        12,
        "240.00 GBP",
        "4.80",
    )
    assert rows[1][5:] == ("<5", "<5", "<5")
    assert rows[2][0] == "total"
    notes = campaigns.report_notes(response)
    assert "fewer than 5 buyers" in notes[0] and notes[1] == "exact cells (audit principal)"
    pending = ads_pb.ReportRow(
        day="2025-01-17", conversions_suppressed=True, conversions_pending=True
    )
    assert campaigns.report_row(pending, 5)[5:] == ("later", "later", "later")
    response.noised, response.noise_mechanism, response.epsilon_per_cell = (
        True,
        "discrete-laplace",
        1,
    )
    response.gmv_clip_bound.CopyFrom(gbp(100_000))
    response.total.days_withheld, response.cells_released, response.epsilon_spent = 1, 2, 2.0
    notes = campaigns.report_notes(response)
    assert "discrete-laplace with epsilon 1 per cell" in notes[1] and "1,000.00 GBP" in notes[1]
    assert "released 2 new cells (epsilon 2)" in notes[2]
    response.total.invalid_clicks, response.total.gross_clicks = 5, 255
    response.total.givt_clicks, response.total.sivt_clicks, response.total.credited_clicks = 4, 1, 2
    assert (
        "invalid clicks (not in the clicks column): 5 of 255 gross (4 general, 1 sophis"
        in (campaigns.report_notes(response)[3])
    )


# --- errors ---------------------------------------------------------------------------------------

CATALOG = Target("catalog", "127.0.0.1:50051")


def test_unavailable_means_not_running() -> None:
    message = describe_status(
        CATALOG,
        grpc.StatusCode.UNAVAILABLE,
        "failed to connect to all addresses; last error: Connection refused",
    )
    assert message == ("catalog is not running on 127.0.0.1:50051 — start it with `shopstream up`")


def test_unavailable_from_the_service_keeps_its_message() -> None:
    message = describe_status(CATALOG, grpc.StatusCode.UNAVAILABLE, "payment provider timed out")
    assert message == "catalog answered UNAVAILABLE: payment provider timed out"


def test_status_errors_show_code_and_message() -> None:
    assert (
        describe_status(CATALOG, grpc.StatusCode.NOT_FOUND, "product 'p-9' not found")
        == "catalog answered NOT_FOUND: product 'p-9' not found"
    )
    assert "DEADLINE_EXCEEDED" in describe_status(CATALOG, grpc.StatusCode.DEADLINE_EXCEEDED, "")


def test_principal_option() -> None:
    assert parse_principal("seller:seller-1") == ("seller", "seller-1")
    with pytest.raises(Exception, match="role:id"):
        parse_principal("seller")
    with pytest.raises(Exception, match="unknown role"):
        parse_principal("root:x")


def test_a_stopped_service_exits_1_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    assert run(["orders", "get", "o-1", "--addr", address]) == 1
    err = capsys.readouterr().err
    assert f"commerce is not running on {address}" in err
    assert "start it with `shopstream up`" in err


# --- a call end to end against a stand-in creator-score -----------------------------------------


class FakeCreatorScore(creators_grpc.CreatorScoreServiceServicer):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, str], float | None]] = []

    def GetCreator(
        self, request: creators_pb.GetCreatorRequest, context: grpc.ServicerContext
    ) -> creators_pb.GetCreatorResponse:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.calls.append((request, metadata, context.time_remaining()))
        if request.creator_id != "c-1":
            context.abort(grpc.StatusCode.NOT_FOUND, f"creator {request.creator_id!r} not found")
        return creators_pb.GetCreatorResponse(
            creator=Creator(creator_id="c-1", display_name="Ada", score=72.5, gmv=gbp(1999))
        )


@pytest.fixture
def creator_score() -> Iterator[tuple[FakeCreatorScore, str]]:
    servicer = FakeCreatorScore()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    creators_grpc.add_CreatorScoreServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_get_prints_json_and_sends_token_and_deadline(
    creator_score: tuple[FakeCreatorScore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    servicer, address = creator_score
    argv = ["creators", "get", "c-1", "--json", "--addr", address]
    assert run([*argv, "--as", "seller:s-1", "--timeout", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["creator"]["display_name"] == "Ada"
    assert printed["creator"]["gmv"] == {"amount_minor": "1999", "currency": "GBP"}
    [(request, metadata, remaining)] = servicer.calls
    assert request.creator_id == "c-1"
    scheme, _, token = metadata["authorization"].partition(" ")
    assert scheme == "Bearer"
    principal = TokenCodec(CliSettings().auth).verify(token)
    assert (principal.role, principal.id) == ("seller", "s-1")
    assert remaining is not None and 0 < remaining <= 3.1  # sent as 3 s, rounded up on the wire


def test_default_caller_is_admin_and_tables_render(
    creator_score: tuple[FakeCreatorScore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    servicer, address = creator_score
    assert run(["creators", "get", "c-1", "--addr", address]) == 0
    out = capsys.readouterr().out
    assert "Creator c-1" in out and "19.99 GBP" in out and "authenticity" in out
    token = servicer.calls[0][1]["authorization"].split(" ", 1)[1]
    assert TokenCodec(CliSettings().auth).verify(token).role == "admin"


def test_status_error_exits_1_with_code_and_message(
    creator_score: tuple[FakeCreatorScore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = creator_score
    assert run(["creators", "get", "nobody", "--addr", address]) == 1
    assert "creator-score answered NOT_FOUND: creator 'nobody' not found" in capsys.readouterr().err


def test_top_rows_show_the_category_standing_they_are_ranked_by() -> None:
    from shopstream.creators.v1 import creators_pb2
    from shopstream_cli.creators import top_rows

    first = creators_pb2.Creator(creator_id="c2", display_name="zoe", score=40.0, tier=3)
    first.category_strengths.add(category_id="beauty", score=88.0, rank=1)
    second = creators_pb2.Creator(creator_id="c1", display_name="mia", score=71.5, tier=6)
    second.category_strengths.add(category_id="beauty", score=61.0, rank=2)
    rows = top_rows([first, second], "beauty")
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (1, "c2", "88.0", "40.0"),
        (2, "c1", "61.0", "71.5"),
    ]
