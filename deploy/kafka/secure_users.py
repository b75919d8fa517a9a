"""Users, ACLs and topics of the local broker's secure profile (`kafka.sh secure-start`).

    python deploy/kafka/secure_users.py --bootstrap 127.0.0.1:9096 --dir .run/kafka/secure

Run as the broker's admin once the broker is up. The users and their ACLs are read from
deploy/k8s/base/kafka/users.yaml, the KafkaUser list generated from the topic registry for the
Strimzi cluster (deploy/k8s/gen_kafka.py: a service writes only the topics it owns, its
heartbeats and the dead-letter twins of what it reads; it reads only what it consumes), so the
local broker and production grant the same. Each user gets a SCRAM-SHA-512 credential with a
random password kept in `<dir>/credentials/<user>` (mode 600, reused on later starts), and the
registry's topics are created as Strimzi's topic operator would.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
ITERATIONS = 8192
_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}


def user_settings(bootstrap: str, run_dir: Path, user: str) -> KafkaSettings:
    """Client settings of one user of a secure-profile broker whose data is in `run_dir`."""
    password = (run_dir / "credentials" / user).read_text(encoding="utf-8").strip()
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=MECHANISM,
        sasl_username=user,
        sasl_password=SecretStr(password),
        ssl_ca_location=str(run_dir / "tls" / "ca.pem"),
    )


def load_users(path: Path) -> dict[str, list[dict[str, Any]]]:
    """User name -> its ACL entries, from a Strimzi KafkaUser list."""
    users: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if doc and doc.get("kind") == "KafkaUser":
            users[doc["metadata"]["name"]] = doc["spec"]["authorization"]["acls"]
    return users


def acl_bindings(user: str, acls: list[dict[str, Any]]) -> list[AclBinding]:
    bindings = []
    for acl in acls:
        resource = acl["resource"]
        kind = _RESOURCES[resource["type"]]
        name = "kafka-cluster" if kind == ResourceType.BROKER else resource["name"]
        pattern = _PATTERNS[resource.get("patternType", "literal")]
        for operation in acl["operations"]:
            bindings.append(
                AclBinding(
                    kind,
                    name,
                    pattern,
                    f"User:{user}",
                    acl.get("host", "*"),
                    _operation(operation),
                    AclPermissionType.ALLOW,
                )
            )
    return bindings


def _operation(name: str) -> AclOperation:
    # Strimzi spells operations in CamelCase (IdempotentWrite), the client in capitals.
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
    return AclOperation[snake]


def password_for(run_dir: Path, user: str) -> str:
    path = run_dir / "credentials" / user
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(24))
    return path.read_text(encoding="utf-8").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--dir", type=Path, required=True, help="the secure node's directory")
    parser.add_argument("--users", type=Path, required=True, help="KafkaUser list (YAML)")
    args = parser.parse_args(argv)
    users = load_users(args.users)
    admin_settings = user_settings(args.bootstrap, args.dir, ADMIN)
    admin = AdminClient(admin_settings.client_config())

    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            user,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, ITERATIONS),
            password_for(args.dir, user).encode(),
        )
        for user in users
    ]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout=30)
    bindings = [b for user, acls in users.items() for b in acl_bindings(user, acls)]
    for future in admin.create_acls(bindings, request_timeout=30).values():
        future.result(timeout=30)
    # A few topics at a time: dozens at once can overload the controller of a busy machine
    # until it fences its own broker.
    specs = load_registry().with_dlqs()
    for start in range(0, len(specs), 6):
        ensure_topics(admin_settings, specs[start : start + 6])
    print(
        f"secure_users: {len(users)} users ({', '.join(users)}), {len(bindings)} ACLs, "
        f"registry topics created",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
