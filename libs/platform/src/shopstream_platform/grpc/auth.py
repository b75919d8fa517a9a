"""JWT bearer auth: a token names a principal (role + id); each RPC states which roles may call it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import jwt

from shopstream_platform.errors import PermissionDeniedError, UnauthenticatedError
from shopstream_platform.settings import AuthSettings

ROLES = frozenset({"buyer", "seller", "creator", "advertiser", "admin", "service"})
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    role: str
    id: str

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "service")


_current: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


def current_principal() -> Principal:
    """The caller of the RPC being handled; the auth interceptor guarantees one for protected RPCs."""
    principal = _current.get()
    if principal is None:
        raise UnauthenticatedError("no authenticated caller")
    return principal


def require_role(*roles: str) -> Principal:
    principal = current_principal()
    if principal.role not in roles:
        raise PermissionDeniedError(
            f"role {principal.role!r} may not do this (needs {' or '.join(roles)})"
        )
    return principal


def ensure_acts_for(principal: Principal, role: str | tuple[str, ...], subject_id: str) -> None:
    """The caller is `role` `subject_id` itself, or an admin/service acting for them: the
    ownership rule every service applies (a seller edits only their own products, ...). `role`
    may name several roles one party acts in (an advertiser is a seller)."""
    if principal.is_admin:
        return
    roles = (role,) if isinstance(role, str) else role
    if principal.role not in roles or principal.id != subject_id:
        raise PermissionDeniedError(
            f"{principal.role} {principal.id!r} may not act for {' or '.join(roles)} {subject_id!r}"
        )


class TokenCodec:
    def __init__(self, settings: AuthSettings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._max_age_s = settings.max_age_s

    def mint(self, role: str, subject: str, ttl_s: int = 3_600) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {sorted(ROLES)}")
        now = int(time.time())
        claims = {
            "sub": subject,
            "role": role,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["sub", "role", "iss", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("token expired") from None
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"invalid token: {exc}") from None
        if time.time() - float(claims["iat"]) > self._max_age_s:
            raise UnauthenticatedError("token too old")
        role = claims["role"]
        if role not in ROLES:
            raise UnauthenticatedError(f"token has unknown role {role!r}")
        return Principal(role=role, id=str(claims["sub"]))


@dataclass(frozen=True)
class AccessPolicy:
    """Which roles may call each method (by bare method name); methods not listed are public.

    `default` applies to methods neither listed nor public: deny by default, so a new RPC is
    protected until someone decides otherwise.
    """

    rules: Mapping[str, frozenset[str]]
    public: frozenset[str] = frozenset()
    default: frozenset[str] = frozenset({"admin", "service"})

    @classmethod
    def of(cls, rules: Mapping[str, Iterable[str]], public: Iterable[str] = ()) -> AccessPolicy:
        return cls(rules={m: frozenset(r) for m, r in rules.items()}, public=frozenset(public))

    def allowed_roles(self, method: str) -> frozenset[str] | None:
        """None when the method needs no token."""
        if method in self.public:
            return None
        return self.rules.get(method, self.default)


def authorize(
    codec: TokenCodec, policy: AccessPolicy, method: str, authorization: str | None
) -> Principal | None:
    """Check the caller of `method`; returns the principal (None for a public call without token)."""
    needed = policy.allowed_roles(method)
    principal: Principal | None = None
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("authorization metadata must be 'Bearer <token>'")
        principal = codec.verify(token.strip())
    if needed is None:
        return principal
    if principal is None:
        raise UnauthenticatedError("this call needs a bearer token")
    if principal.role not in needed:
        raise PermissionDeniedError(f"role {principal.role!r} may not call {method}")
    return principal
