"""Bearer tokens: signature, expiry, roles and units."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Role, TokenVerifier, generate_keypair, issue_token
from shared.errors import Problem


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    private, public = generate_keypair(tmp_path_factory.mktemp("jwt"))
    return private.read_text(), public.read_text()


def verifier(public: str) -> TokenVerifier:
    return TokenVerifier(public, algorithm="EdDSA", issuer="motcua", audience="motcua")


def test_a_valid_token_gives_roles_and_units(keys: tuple[str, str]) -> None:
    token = issue_token(keys[0], subject="u1", roles=["clerk"], units=["000.00.12.H56"], name="Phạm Thu Hà")
    user = verifier(keys[1]).verify(token)
    assert user.roles == {Role.CLERK} and user.units == {"000.00.12.H56"} and user.name == "Phạm Thu Hà"
    assert user.can_see("000.00.12.H56") and not user.can_see("000.00.13.H56")


@pytest.mark.parametrize("case", ["expired", "forged", "other_key", "wrong_audience", "unknown_role"])
def test_bad_tokens_are_refused_with_401(keys: tuple[str, str], tmp_path, case: str) -> None:  # noqa: ANN001
    private, public = keys
    kwargs: dict = dict(subject="u1", roles=["clerk"], units=["U"])
    if case == "expired":
        token = issue_token(private, **kwargs, now=datetime.now(UTC) - timedelta(hours=9))
    elif case == "forged":
        token = issue_token(private, **kwargs)
        head, body, sig = token.split(".")
        token = ".".join([head, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), sig])
    elif case == "other_key":
        other_private, _ = generate_keypair(tmp_path / "other")
        token = issue_token(other_private.read_text(), **kwargs)
    elif case == "wrong_audience":
        token = issue_token(private, **kwargs, audience="someone-else")
    else:
        token = issue_token(private, subject="u1", roles=["janitor"], units=["U"])
    with pytest.raises(Problem) as caught:
        verifier(public).verify(token)
    assert caught.value.status == 401


def test_a_unit_outside_the_token_is_forbidden(keys: tuple[str, str]) -> None:
    user = verifier(keys[1]).verify(issue_token(keys[0], subject="u", roles=["leader"], units=["A"]))
    with pytest.raises(Problem) as caught:
        user.require_unit("B")
    assert caught.value.status == 403


def test_a_verified_token_is_remembered_only_until_it_expires(keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import jwt.api_jwt

    import shared.auth

    check = verifier(keys[1])
    token = issue_token(keys[0], subject="u1", roles=["clerk"], units=["U"], ttl=timedelta(hours=1))
    first = check.verify(token)
    assert check.verify(token) is first  # remembered, not decoded again
    head, body, sig = token.split(".")
    forged = ".".join([head, body, sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")])
    with pytest.raises(Problem) as caught:  # a token is remembered by its exact text: a changed one is checked
        check.verify(forged)
    assert caught.value.status == 401

    later = datetime.now(UTC) + timedelta(hours=2)

    class _Later(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return later

    monkeypatch.setattr(jwt.api_jwt, "datetime", _Later)
    monkeypatch.setattr(shared.auth.time, "time", lambda: later.timestamp())
    with pytest.raises(Problem) as caught:
        check.verify(token)
    assert caught.value.status == 401 and "expired" in caught.value.title.lower()
