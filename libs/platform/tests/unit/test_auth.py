import time

import jwt
import pytest
from pydantic import SecretStr

from shopstream_platform.errors import PermissionDeniedError, UnauthenticatedError
from shopstream_platform.grpc.auth import AccessPolicy, TokenCodec, authorize
from shopstream_platform.settings import AuthSettings

SETTINGS = AuthSettings(jwt_secret=SecretStr("s3cret-s3cret-s3cret-s3cret-s3cret!"))
POLICY = AccessPolicy.of({"CreateThing": ["seller"]}, public=["GetThing"])


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_role_allowed_and_denied() -> None:
    codec = TokenCodec(SETTINGS)
    seller = authorize(codec, POLICY, "CreateThing", bearer(codec.mint("seller", "s1")))
    assert seller is not None and seller.id == "s1"
    with pytest.raises(PermissionDeniedError):
        authorize(codec, POLICY, "CreateThing", bearer(codec.mint("buyer", "b1")))


def test_public_methods_need_no_token_and_unlisted_default_to_admin() -> None:
    codec = TokenCodec(SETTINGS)
    assert authorize(codec, POLICY, "GetThing", None) is None
    with pytest.raises(UnauthenticatedError):
        authorize(codec, POLICY, "CreateThing", None)
    with pytest.raises(PermissionDeniedError):
        authorize(codec, POLICY, "DeleteEverything", bearer(codec.mint("seller", "s1")))
    assert authorize(codec, POLICY, "DeleteEverything", bearer(codec.mint("admin", "a1")))


def test_forged_expired_and_malformed_tokens_are_unauthenticated() -> None:
    codec = TokenCodec(SETTINGS)
    forged = TokenCodec(
        AuthSettings(jwt_secret=SecretStr("other-other-other-other-other-other!"))
    ).mint("admin", "x")
    expired = jwt.encode(
        {
            "sub": "x",
            "role": "admin",
            "iss": "shopstream",
            "iat": time.time() - 100,
            "exp": time.time() - 10,
        },
        "s3cret-s3cret-s3cret-s3cret-s3cret!",
        algorithm="HS256",
    )
    for header in (bearer(forged), bearer(expired), "Basic abc", "Bearer "):
        with pytest.raises(UnauthenticatedError):
            authorize(codec, POLICY, "CreateThing", header)


def test_tokens_of_another_issuer_or_audience_or_without_them_are_unauthenticated() -> None:
    codec = TokenCodec(SETTINGS)
    secret = SETTINGS.jwt_secret.get_secret_value()
    other_issuer = TokenCodec(SETTINGS.model_copy(update={"issuer": "elsewhere"}))
    other_audience = TokenCodec(SETTINGS.model_copy(update={"audience": "other-platform"}))
    now = int(time.time())
    claims = {"sub": "x", "role": "admin", "iat": now, "exp": now + 60}
    no_audience = jwt.encode({**claims, "iss": "shopstream"}, secret, algorithm="HS256")
    no_issuer = jwt.encode({**claims, "aud": "shopstream"}, secret, algorithm="HS256")
    cases = {
        "issuer": other_issuer.mint("admin", "x"),
        "audience": other_audience.mint("admin", "x"),
        "no aud": no_audience,
        "no iss": no_issuer,
    }
    for token in cases.values():
        with pytest.raises(UnauthenticatedError):
            authorize(codec, POLICY, "CreateThing", bearer(token))
        # A bad token is refused on public methods too, rather than ignored.
        with pytest.raises(UnauthenticatedError):
            authorize(codec, POLICY, "GetThing", bearer(token))
    assert authorize(codec, POLICY, "CreateThing", bearer(codec.mint("seller", "s1")))
