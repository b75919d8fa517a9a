"""Entry point: parses the command line and dispatches to one module per command group."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopstream_cli import asyncapi, campaigns, creators, dlq, orders, products, stack, topics
from shopstream_cli.output import fail
from shopstream_cli.rpc import (
    DEFAULT_PRINCIPAL,
    DEFAULT_TIMEOUT_S,
    RpcFailure,
    Target,
    local_address,
    parse_principal,
)
from shopstream_platform.grpc.auth import ROLES, TokenCodec
from shopstream_platform.settings import ServiceSettings, load_settings


class CliSettings(ServiceSettings):
    """The CLI reads the same SHOPSTREAM_* variables as the services (Kafka, auth secret)."""

    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_CLI_", env_nested_delimiter="__")
    service_name: str = "cli"
    # Where the query commands find each service (SHOPSTREAM_CLI_CATALOG_ADDR=host:port, ...).
    catalog_addr: str = local_address("catalog")
    commerce_addr: str = local_address("commerce")
    ads_addr: str = local_address("ads")
    creator_score_addr: str = local_address("creator-score")
    rpc_timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)

    def address_of(self, service: str) -> str:
        return str(getattr(self, service.replace("-", "_") + "_addr"))


class _Subparsers:
    """add_subparsers whose every command also accepts the common options."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self._action = action
        self._common = common

    def add_parser(
        self, name: str, *, parents: Sequence[argparse.ArgumentParser] = (), **kwargs: Any
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._action.add_parser(
            name, parents=[self._common, *parents], **kwargs
        )
        return parser


def _rpc_options() -> argparse.ArgumentParser:
    """Options of every command that calls a service over gRPC."""
    rpc = argparse.ArgumentParser(add_help=False)
    rpc.add_argument(
        "--as",
        dest="principal",
        type=parse_principal,
        default=DEFAULT_PRINCIPAL,
        metavar="ROLE:ID",
        help="call as this principal (a dev JWT is minted; default admin:cli)",
    )
    rpc.add_argument("--addr", default=None, metavar="HOST:PORT", help="the service's address")
    rpc.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="deadline of the call"
    )
    return rpc


def _add_query_commands(sub: _Subparsers, common: argparse.ArgumentParser) -> None:
    rpc = _rpc_options()

    c = sub.add_parser("creators", help="the creator marketplace (creator-score)")
    csub = _Subparsers(c.add_subparsers(dest="creators_command", required=True), common)
    cs = csub.add_parser("search", parents=[rpc], help="search creators by filters")
    cs.add_argument("text", nargs="?", default="", help="words of the name or id")
    cs.add_argument("--category", default="")
    cs.add_argument("--min-followers", type=int, default=0)
    cs.add_argument("--max-followers", type=int, default=0)
    cs.add_argument("--mcn", default="", help="MCN agency")
    cs.add_argument("--min-score", type=float, default=0.0)
    cs.add_argument("--sort", choices=sorted(creators.SORTS), default="score")
    cs.add_argument("--limit", type=int, default=20)
    cs.add_argument("--page-token", default="")
    ct = csub.add_parser("top", parents=[rpc], help="best creators of a category")
    ct.add_argument("category", help="category id, e.g. beauty (overall: search --sort score)")
    ct.add_argument("--limit", type=int, default=10)
    cg = csub.add_parser("get", parents=[rpc], help="one creator with score components")
    cg.add_argument("creator_id")

    a = sub.add_parser("campaigns", help="ad campaigns and reports (ads)")
    asub = _Subparsers(a.add_subparsers(dest="campaigns_command", required=True), common)
    al = asub.add_parser("list", parents=[rpc], help="campaigns of an advertiser (or all)")
    al.add_argument("--advertiser", default="", help="advertiser (seller) id; empty = all")
    al.add_argument("--limit", type=int, default=50)
    al.add_argument("--page-token", default="")
    ar = asub.add_parser("report", parents=[rpc], help="a campaign's daily report")
    ar.add_argument("campaign_id")
    ar.add_argument("--from", dest="from_day", default="", metavar="YYYY-MM-DD")
    ar.add_argument("--to", dest="to_day", default="", metavar="YYYY-MM-DD")
    ar.add_argument(
        "--noise",
        action="store_true",
        help="ignored: the caller decides (released cells for everyone, exact ones only with "
        "--as service:audit)",
    )

    o = sub.add_parser("orders", help="orders (commerce)")
    osub = _Subparsers(o.add_subparsers(dest="orders_command", required=True), common)
    og = osub.add_parser("get", parents=[rpc], help="one order with its lines")
    og.add_argument("order_id")

    p = sub.add_parser("products", help="product listings (catalog)")
    psub = _Subparsers(p.add_subparsers(dest="products_command", required=True), common)
    ps = psub.add_parser("search", parents=[rpc], help="search listings by text and filters")
    ps.add_argument("text", help="words that must all appear (quote several)")
    ps.add_argument("--category", default="")
    ps.add_argument("--seller", default="")
    ps.add_argument("--in-stock", action="store_true")
    ps.add_argument("--limit", type=int, default=20)
    ps.add_argument("--page-token", default="")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shopstream", description="shopstream local stack and tools")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    # --json is accepted after the subcommand too; SUPPRESS keeps the top-level value otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    sub = _Subparsers(p.add_subparsers(dest="command", required=True), common)

    sub.add_parser("up", help="start Kafka and every service, wait until they serve")
    down = sub.add_parser("down", help="stop every service (and their supervisors) and Kafka")
    down.add_argument(
        "--keep-kafka", action="store_true", help="stop the services only (`make stop` does)"
    )
    down.add_argument(
        "--timeout",
        type=float,
        default=stack.STOP_TIMEOUT_S,
        metavar="SECONDS",
        help="graceful shutdown time before what is left is killed (default %(default).0f)",
    )
    sub.add_parser(
        "status", help="Kafka and service health; exits 1 unless every component is healthy"
    )
    lg = sub.add_parser("logs", help="a service's log (.run/logs/SERVICE.log)")
    lg.add_argument("service", choices=[s.name for s in stack.SERVICES])
    lg.add_argument("-n", "--lines", type=int, default=50, help="last lines to show (default 50)")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")

    t = sub.add_parser("topics", help="the topic registry and live records")
    tsub = _Subparsers(t.add_subparsers(dest="topics_command", required=True), common)
    tsub.add_parser("list", help="every registered topic")
    tail = tsub.add_parser("tail", help="print records of a topic decoded from protobuf")
    tail.add_argument("topic")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, default=None, help="stop after this many records")
    tail.add_argument(
        "--idle-exit", type=float, default=None, help="stop after this many idle seconds"
    )
    doc = tsub.add_parser("asyncapi", help="generate the AsyncAPI document of the registry")
    doc.add_argument(
        "--output", default=None, metavar="PATH", help="default docs/asyncapi.yaml; - for stdout"
    )
    doc.add_argument(
        "--check", action="store_true", help="fail if the file differs from a fresh generation"
    )

    d = sub.add_parser("dlq", help="dead-lettered records")
    dsub = _Subparsers(d.add_subparsers(dest="dlq_command", required=True), common)
    dl = dsub.add_parser("list", help="show dead letters of a topic with the reason")
    dl.add_argument("topic", help="the original topic (without .dlq)")
    dl.add_argument("--max", type=int, default=100)
    dr = dsub.add_parser("redrive", help="send dead letters back to their topic")
    dr.add_argument("topic", help="the original topic (without .dlq)")
    dr.add_argument("--max", type=int, default=1000)
    dr.add_argument("--dry-run", action="store_true")

    tok = sub.add_parser("token", help="mint a development JWT for a role and id")
    tok.add_argument("role", choices=sorted(ROLES))
    tok.add_argument("id")
    tok.add_argument("--ttl", type=int, default=3600, help="seconds")

    _add_query_commands(sub, common)
    return p


def _target(settings: CliSettings, service: str, args: argparse.Namespace) -> Target:
    return Target(
        service=service,
        address=args.addr or settings.address_of(service),
        principal=args.principal,
        timeout_s=args.timeout or settings.rpc_timeout_s,
    )


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(CliSettings)
    try:
        return _dispatch(args, settings)
    except RpcFailure as exc:
        return fail(str(exc))


def _dispatch(args: argparse.Namespace, settings: CliSettings) -> int:
    kafka = settings.kafka
    auth = settings.auth
    match args.command:
        case "up":
            return stack.up(kafka)
        case "down":
            return stack.down(keep_kafka=args.keep_kafka, timeout_s=args.timeout)
        case "status":
            addresses = {s.name: settings.address_of(s.name) for s in stack.SERVICES}
            return stack.status(kafka, addresses, as_json=args.json)
        case "logs":
            return stack.logs(args.service, lines=args.lines, follow=args.follow)
        case "topics" if args.topics_command == "list":
            return topics.list_topics(as_json=args.json)
        case "topics" if args.topics_command == "asyncapi":
            return asyncapi.asyncapi_command(args.output, check=args.check)
        case "topics":
            return topics.tail(
                kafka,
                args.topic,
                from_beginning=args.from_beginning,
                max_records=args.max,
                idle_exit_s=args.idle_exit,
                as_json=args.json,
            )
        case "dlq" if args.dlq_command == "list":
            return dlq.list_dead_letters(kafka, args.topic, limit=args.max, as_json=args.json)
        case "dlq":
            return dlq.redrive_dead_letters(kafka, args.topic, limit=args.max, dry_run=args.dry_run)
        case "token":
            # Plain print: the token is meant for `$(shopstream token ...)`, not for eyes.
            print(TokenCodec(settings.auth).mint(args.role, args.id, ttl_s=args.ttl))
            return 0
        case "creators":
            target = _target(settings, "creator-score", args)
            if args.creators_command == "get":
                return creators.get(target, auth, args.creator_id, as_json=args.json)
            if args.creators_command == "top":
                return creators.top(target, auth, args.category, args.limit, as_json=args.json)
            query = creators.CreatorQuery(
                text=args.text,
                category=args.category,
                min_followers=args.min_followers,
                max_followers=args.max_followers,
                mcn=args.mcn,
                min_score=args.min_score,
                sort=args.sort,
                limit=args.limit,
                page_token=args.page_token,
            )
            return creators.search(target, auth, query, as_json=args.json)
        case "campaigns":
            target = _target(settings, "ads", args)
            if args.campaigns_command == "list":
                return campaigns.list_campaigns(
                    target, auth, args.advertiser, args.limit, args.page_token, as_json=args.json
                )
            return campaigns.report(
                target,
                auth,
                args.campaign_id,
                args.from_day,
                args.to_day,
                args.noise,
                as_json=args.json,
            )
        case "orders":
            return orders.get(
                _target(settings, "commerce", args), auth, args.order_id, as_json=args.json
            )
        case "products":
            request = products.search_request(
                args.text,
                category=args.category,
                seller=args.seller,
                in_stock=args.in_stock,
                limit=args.limit,
                page_token=args.page_token,
            )
            return products.search(
                _target(settings, "catalog", args), auth, request, as_json=args.json
            )
    return fail(f"unknown command {args.command}")


def main() -> None:
    try:
        code = run()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
