"""Entry point: parses the command line and dispatches to one module per command group."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopstream_cli import (
    asyncapi,
    campaigns,
    completion,
    creators,
    dlq,
    groups,
    orders,
    products,
    stack,
    topics,
)
from shopstream_cli import tail as tail_module
from shopstream_cli.broker import CliError
from shopstream_cli.output import fail
from shopstream_cli.reconcile import Scope
from shopstream_cli.reconcile import command as reconcile_command
from shopstream_cli.rpc import (
    DEFAULT_PRINCIPAL,
    DEFAULT_TIMEOUT_S,
    RpcFailure,
    Target,
    local_address,
    parse_principal,
)
from shopstream_platform.grpc.auth import ROLES, TokenCodec
from shopstream_platform.kafka.topics import load_registry
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


def version_text() -> str:
    try:
        cli = importlib.metadata.version("shopstream-cli")
    except importlib.metadata.PackageNotFoundError:
        cli = "unknown"
    return f"shopstream {cli} (Python {platform.python_version()})"


def _start_at(text: str) -> tail_module.StartAt:
    try:
        return tail_module.StartAt.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _since(text: str) -> datetime:
    try:
        return tail_module.parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"--grep: {exc}") from None


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
    p.add_argument("--version", action="version", version=version_text())
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
    tail = tsub.add_parser(
        "tail",
        help="print records of a topic decoded from protobuf",
        description=tail_module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tail.add_argument("topic")
    tail.add_argument(
        "-p", "--partition", type=int, action="append", help="only this partition (repeatable)"
    )
    start = tail.add_mutually_exclusive_group()
    start.add_argument(
        "-o",
        "--offset",
        type=_start_at,
        default=None,
        metavar="WHERE",
        help="earliest, latest, N (offset N of each partition) or -N (the last N matching records)",
    )
    start.add_argument(
        "--since", type=_since, default=None, metavar="WHEN", help="30s, 15m, 2h, 1d or an ISO time"
    )
    start.add_argument("--from-beginning", action="store_true", help="same as --offset earliest")
    tail.add_argument("-k", "--key", default=None, help="only records with this key")
    tail.add_argument(
        "-t", "--type", dest="ce_type", default=None, help="only this ce_type (full or short name)"
    )
    tail.add_argument(
        "-g", "--grep", type=_pattern, default=None, metavar="REGEX", help="only records matching"
    )
    tail.add_argument(
        "-c", "--count", "--max", dest="count", type=int, default=None, help="stop after N records"
    )
    follow = tail.add_mutually_exclusive_group()
    follow.add_argument(
        "-f", "--follow", action="store_true", default=None, help="wait for new records at the end"
    )
    follow.add_argument(
        "--no-follow", dest="follow", action="store_false", help="stop at the partitions' end"
    )
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

    g = sub.add_parser("groups", help="consumer groups with their lag")
    g.add_argument("--all", action="store_true", help="also the CLI's own throwaway groups")
    gsub = _Subparsers(g.add_subparsers(dest="groups_command"), common)
    gl = gsub.add_parser("lag", help="a group's lag per partition, with the member reading it")
    gl.add_argument("group")

    rec = sub.add_parser(
        "reconcile",
        help="recount every reported number from the topics and compare it with the services",
        description="Read the published topics (from the beginning, or --since), recompute "
        "orders, payments, refunds, sellers' and creators' ledgers, stock and live stats, ask "
        "the services (as admin) and list every mismatch; exit 1 when anything differs.",
    )
    rec.add_argument(
        "--since",
        type=_since,
        default=None,
        metavar="WHEN",
        help="read records from this time (30m, 2h, 1d or an ISO time); default: the beginning. "
        "Entities born before it are not compared",
    )
    rec.add_argument(
        "--seller",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only sellers whose id starts with PREFIX (repeatable; default all)",
    )
    rec.add_argument(
        "--creator",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only creators whose id starts with PREFIX (repeatable; default all; with --since, "
        "creators' ledgers are compared only when named)",
    )
    rec.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="deadline of each call"
    )

    comp = sub.add_parser("completion", help="print a shell completion script")
    comp.add_argument("shell", choices=["bash", "zsh"])

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
    except (RpcFailure, CliError) as exc:
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
            tail_request = tail_module.TailRequest(
                topic=args.topic,
                partitions=args.partition,
                start=tail_module.StartAt("earliest") if args.from_beginning else args.offset,
                since=args.since,
                filters=tail_module.Filters(key=args.key, ce_type=args.ce_type, pattern=args.grep),
                count=args.count,
                follow=args.follow,
                idle_exit_s=args.idle_exit,
            )
            return tail_module.tail(kafka, tail_request, as_json=args.json)
        case "groups" if args.groups_command == "lag":
            return groups.show_lag(kafka, args.group, as_json=args.json)
        case "groups":
            return groups.list_groups(kafka, include_all=args.all, as_json=args.json)
        case "reconcile":
            scope = Scope(
                since=args.since, sellers=tuple(args.seller), creators=tuple(args.creator)
            )
            addresses = {s.name: settings.address_of(s.name) for s in stack.SERVICES}
            return reconcile_command.run(
                kafka,
                auth,
                addresses,
                scope,
                as_json=args.json,
                timeout_s=args.timeout or max(settings.rpc_timeout_s, 10.0),
            )
        case "completion":
            extra = {"topics tail": [t.name for t in load_registry()]}
            extra["dlq list"] = extra["dlq redrive"] = extra["topics tail"]
            sys.stdout.write(completion.script(parser(), args.shell, extra))
            return 0
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
