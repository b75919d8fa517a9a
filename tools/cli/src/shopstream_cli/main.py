"""Entry point: parses the command line and dispatches to one module per command group."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic_settings import SettingsConfigDict

from shopstream_cli import dlq, stack, topics
from shopstream_cli.output import fail
from shopstream_platform.grpc.auth import ROLES, TokenCodec
from shopstream_platform.settings import ServiceSettings, load_settings


class CliSettings(ServiceSettings):
    """The CLI reads the same SHOPSTREAM_* variables as the services (Kafka, auth secret)."""

    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_CLI_", env_nested_delimiter="__")
    service_name: str = "cli"


class _Subparsers:
    """add_subparsers whose every command also accepts the common options."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self._action = action
        self._common = common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._action.add_parser(
            name, parents=[self._common], **kwargs
        )
        return parser


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
    sub.add_parser("down", help="stop every service and Kafka")
    sub.add_parser("status", help="Kafka and service health")

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
    return p


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(CliSettings)
    kafka = settings.kafka
    match args.command:
        case "up":
            return stack.up(kafka)
        case "down":
            return stack.down()
        case "status":
            return stack.status(kafka, as_json=args.json)
        case "topics" if args.topics_command == "list":
            return topics.list_topics(as_json=args.json)
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
