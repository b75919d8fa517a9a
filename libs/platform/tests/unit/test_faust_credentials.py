"""The Faust worker's aiokafka credentials from the service's KafkaSettings (the ones its
confluent-kafka clients use): each security protocol as aiokafka would be configured by Faust."""

from __future__ import annotations

import ssl

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr

from shopstream_platform.faust_app import aiokafka_credentials
from shopstream_platform.settings import KafkaSettings


def _sasl(protocol: str, **overrides: object) -> KafkaSettings:
    fields: dict[str, object] = {
        "security_protocol": protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "creator-score",
        "sasl_password": SecretStr("s3cret"),
    }
    return KafkaSettings.model_validate({**fields, **overrides})


def test_plaintext_has_no_credentials() -> None:
    assert aiokafka_credentials(KafkaSettings()) is None
    assert credentials_to_aiokafka_auth(None) == {"security_protocol": "PLAINTEXT"}


def test_sasl_over_tls_is_scram_with_a_verifying_context() -> None:
    credentials = aiokafka_credentials(_sasl("SASL_SSL"))
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("creator-score", "s3cret")
    context = auth["ssl_context"]
    # The broker's certificate and host name are checked, as librdkafka does.
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_without_tls_has_no_context() -> None:
    auth = credentials_to_aiokafka_auth(aiokafka_credentials(_sasl("SASL_PLAINTEXT")))
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["ssl_context"] is None


def test_tls_alone_is_ssl_credentials() -> None:
    auth = credentials_to_aiokafka_auth(
        aiokafka_credentials(KafkaSettings(security_protocol="SSL"))
    )
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("missing", ["sasl_mechanism", "sasl_username", "sasl_password"])
def test_sasl_settings_left_out_are_an_error_not_a_default(missing: str) -> None:
    with pytest.raises(ValueError, match="needs sasl_mechanism, sasl_username and sasl_password"):
        aiokafka_credentials(_sasl("SASL_SSL", **{missing: None}))
