"""Bearer JWTs: signature checked against the configured key, roles, and unit scoping."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Problem
from shared.roles import Role

__all__ = ["CurrentUser", "Principal", "Role", "TokenVerifier", "generate_keypair", "issue_token", "require_roles"]


@dataclass(frozen=True)
class Principal:
    """The caller, as its verified token says."""

    subject: str
    roles: frozenset[Role]
    units: frozenset[str]
    name: str | None = None

    def can_see(self, unit: str) -> bool:
        """True when the unit is one of the caller's (an auditor or admin with '*' sees all)."""
        return "*" in self.units or unit in self.units

    def require_unit(self, unit: str) -> None:
        """Refuse a unit outside the token."""
        if not self.can_see(unit):
            raise Problem(403, "unit-forbidden", "Unit outside your token", f"Your token does not cover unit {unit!r}.")


class TokenVerifier:
    """Verifies tokens against one public key (EdDSA, RS256 or ES256).

    A token that verified is remembered (its exact text, up to ``cache_size`` of them) until its ``exp``: a client
    sends the same token with every request, and its signature, issuer, audience and roles cannot change while it
    lives, so checking them once is enough. Past ``exp`` it is verified again (and refused as expired); a token that
    failed is never remembered. The PEM key is parsed once, not on every request.
    """

    def __init__(
        self, public_key_pem: str | None, *, algorithm: str, issuer: str, audience: str, cache_size: int = 4096
    ) -> None:
        self.key = public_key_pem
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self._cache_size = cache_size
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._prepared: tuple[str, object] | None = None

    def _prepared_key(self) -> object:
        """The key object PyJWT would make from the PEM on every call, made once (again if ``key`` is replaced)."""
        assert self.key
        if self._prepared is None or self._prepared[0] != self.key:
            try:
                prepared: object = jwt.get_algorithm_by_name(self.algorithm).prepare_key(self.key)
            except (jwt.PyJWTError, ValueError, NotImplementedError):
                prepared = self.key  # PyJWT then reports the problem with the key on each token, as before
            self._prepared = (self.key, prepared)
            self._verified.clear()
        return self._prepared[1]

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; a 401 problem otherwise."""
        if not self.key:
            raise Problem(401, "unauthenticated", "Authentication is not configured", "No token verification key is set.")
        key = self._prepared_key()
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1]:  # PyJWT refuses once exp <= now
                return known[0]
            del self._verified[token]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Problem(401, "token-expired", "Token expired", "The bearer token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Problem(401, "token-invalid", "Token invalid", f"The bearer token was refused: {exc}.") from exc
        try:
            roles = frozenset(Role(r) for r in claims.get("roles", []))
        except ValueError as exc:
            raise Problem(401, "token-invalid", "Token invalid", f"Unknown role in token: {exc}.") from exc
        units = frozenset(str(u) for u in claims.get("units", []))
        principal = Principal(subject=str(claims["sub"]), roles=roles, units=units, name=claims.get("name"))
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (principal, float(claims["exp"]))
        return principal


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the verified caller."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "unauthenticated", "Authentication required", "Send an 'Authorization: Bearer <token>' header.")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role):  # noqa: ANN201 - a FastAPI dependency factory
    """Dependency that admits only callers holding one of the roles."""
    wanted = frozenset(roles)

    async def _dependency(user: CurrentUser) -> Principal:
        if not user.roles & wanted:
            names = ", ".join(sorted(r.value for r in wanted))
            raise Problem(403, "role-forbidden", "Role not allowed", f"This action needs one of the roles: {names}.")
        return user

    return Depends(_dependency)


# ---- the local signing key and token issuing (development and tests) ------


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Create an Ed25519 key pair once; return (private, public) PEM paths."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "jwt-private.pem", directory / "jwt-public.pem"
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        private_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return private_path, public_path


def issue_token(
    private_key_pem: str,
    *,
    subject: str,
    roles: list[str],
    units: list[str],
    name: str | None = None,
    ttl: timedelta = timedelta(hours=8),
    issuer: str = "motcua",
    audience: str = "motcua",
    algorithm: str = "EdDSA",
    now: datetime | None = None,
) -> str:
    """Sign a token (what an identity provider does in production)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": subject,
        "roles": roles,
        "units": units,
        "iss": issuer,
        "aud": audience,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    if name:
        claims["name"] = name
    return jwt.encode(claims, private_key_pem, algorithm=algorithm)
