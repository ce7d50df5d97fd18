"""HTTP-level tests of authentication: token grants, token validation, key rotation, refresh rotation
with reuse detection, logout, login lock-out and account deactivation."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import select

from app.config import Settings, get_settings
from app.models.auth import LoginThrottle, RefreshToken, RevokedAccessToken
from app.security import sha256_hex
from tests.conftest import ADMIN_PASSWORD, assert_problem, bearer, create_user, login

PROBLEM_JSON = "application/problem+json"
TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/refresh"
LOGOUT_URL = "/api/v1/auth/logout"
USER_PASSWORD = "correct-horse-battery"
OTHER_KEY = "an-entirely-different-signing-key-0123456789"

Sessions = async_sessionmaker[AsyncSession]


# --- helpers ---------------------------------------------------------------------------------------




def assert_unauthenticated(r: httpx.Response, code: str = "invalid_token") -> dict[str, Any]:
    body = assert_problem(r, 401, code)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
    return body


async def password_grant(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN_URL, data={"grant_type": "password", "username": username,
                                              "password": password})


async def do_refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(REFRESH_URL, json={"refresh_token": refresh_token})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers=bearer(access_token))


def b64url(data: bytes | str | dict[str, Any]) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def token_header(token: str) -> dict[str, Any]:
    return b64url_json(token.split(".")[0])


def token_payload(token: str) -> dict[str, Any]:
    return b64url_json(token.split(".")[1])


def access_claims_for(settings: Settings, subject: str, **overrides: Any) -> dict[str, Any]:
    """A complete, valid access-token claim set; ``None`` in ``overrides`` drops a claim."""
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": subject,
        "iat": now, "nbf": now, "exp": now + 300, "jti": str(uuid.uuid4()),
        "typ": "access", "ptype": "user",
    }
    for k, v in overrides.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def sign(settings: Settings, claims: dict[str, Any], *, kid: str | None = None, key: str | None = None,
         algorithm: str = "HS256") -> str:
    kid = kid or settings.jwt_active_kid
    key = key or settings.key_set[settings.jwt_active_kid]
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def settings_with(**kw: Any) -> Settings:
    """The test settings (same environment) with some values replaced, validated like the real ones."""
    return Settings(**kw)


async def create_service_account(client: httpx.AsyncClient, admin: str, *, region_code: str = "330000",
                                 scopes: list[str] | None = None) -> dict[str, Any]:
    r = await client.post("/api/v1/service-accounts", headers=bearer(admin), json={
        "name": "province integration", "region_code": region_code,
        "scopes": scopes or ["notifications:read", "enterprises:read"]})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["client_secret"]
    return body


async def client_credentials(client: httpx.AsyncClient, client_id: str, client_secret: str) -> httpx.Response:
    return await client.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": client_id,
                                              "client_secret": client_secret})


async def refresh_rows(sessions: Sessions, **where: Any) -> list[RefreshToken]:
    async with sessions() as s:
        stmt = select(RefreshToken)
        for k, v in where.items():
            stmt = stmt.where(getattr(RefreshToken, k) == v)
        return list((await s.execute(stmt)).scalars().all())


async def throttle_row(sessions: Sessions, username: str) -> LoginThrottle | None:
    async with sessions() as s:
        row: LoginThrottle | None = await s.get(LoginThrottle, username)
        return row


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest.fixture
async def admin_id(client: httpx.AsyncClient, admin_token: str) -> str:
    r = await me(client, admin_token)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


@pytest.fixture
async def user(client: httpx.AsyncClient, admin_token: str) -> dict[str, Any]:
    """A county inspector with the default test password."""
    return await create_user(client, admin_token, username="xihu.inspector", region_code="330106",
                             roles=["inspector"], password=USER_PASSWORD)


# --- grants ----------------------------------------------------------------------------------------


async def test_password_grant_returns_access_and_refresh_bearer_tokens(
    client: httpx.AsyncClient, settings: Settings, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    r = await password_grant(client, "xihu.inspector", USER_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["access_token"] and body["refresh_token"]
    assert body["scope"] == "inspector"

    access, refresh = token_payload(body["access_token"]), token_payload(body["refresh_token"])
    assert token_header(body["access_token"]) | {"typ": "JWT"} == {"alg": "HS256", "kid": settings.jwt_active_kid,
                                                                   "typ": "JWT"}
    assert access["typ"] == "access" and refresh["typ"] == "refresh"
    assert access["sub"] == refresh["sub"] == user["id"]
    assert access["iss"] == settings.jwt_issuer and access["aud"] == settings.jwt_audience
    assert access["exp"] - access["iat"] == pytest.approx(settings.access_token_ttl_seconds, abs=1)
    assert access["jti"] != refresh["jti"]

    rows = await refresh_rows(sessionmaker, jti=uuid.UUID(refresh["jti"]))
    assert len(rows) == 1
    assert str(rows[0].user_id) == user["id"]
    assert rows[0].token_hash == sha256_hex(body["refresh_token"])  # only a hash is stored
    assert str(rows[0].family_id) == refresh["fam"]
    assert rows[0].used_at is None and rows[0].revoked_at is None

    r = await me(client, body["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "xihu.inspector"
    assert r.json()["principal_type"] == "user"


async def test_client_credentials_grant_returns_access_token_without_refresh_token(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    sa = await create_service_account(client, admin_token)
    r = await client_credentials(client, sa["client_id"], sa["client_secret"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body.get("refresh_token") is None
    assert body["scope"] == "enterprises:read notifications:read"
    claims = token_payload(body["access_token"])
    assert claims["typ"] == "access" and claims["ptype"] == "service" and claims["sub"] == sa["id"]


async def test_me_for_national_service_account_shows_its_scopes_and_principal_type_service(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    sa = await create_service_account(client, admin_token, region_code="000000",
                                      scopes=["recalls:read", "enterprises:read"])
    token = (await client_credentials(client, sa["client_id"], sa["client_secret"])).json()["access_token"]
    r = await me(client, token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["principal_type"] == "service"
    assert body["id"] == sa["id"]
    assert body["username"] == sa["client_id"]
    assert body["display_name"] == "province integration"
    assert body["scopes"] == ["enterprises:read", "recalls:read"]
    assert body["roles"] == []
    assert body["region_code"] == "000000" and body["level"] == "national"


async def test_me_for_county_user_shows_its_region_level_and_roles(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    created = await create_user(client, admin_token, username="county.officer", region_code="330106",
                                roles=["officer", "inspector"])
    token = (await login(client, "county.officer", USER_PASSWORD))["access_token"]
    r = await me(client, token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == created["id"] and body["principal_type"] == "user"
    assert body["region_code"] == "330106" and body["level"] == "county"
    assert body["roles"] == ["inspector", "officer"] and body["scopes"] == []


async def test_me_for_provincial_service_account_shows_its_scopes_and_principal_type_service(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    sa = await create_service_account(client, admin_token, region_code="330000", scopes=["recalls:read"])
    token = (await client_credentials(client, sa["client_id"], sa["client_secret"])).json()["access_token"]
    r = await me(client, token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["principal_type"] == "service" and body["scopes"] == ["recalls:read"]
    assert body["region_code"] == "330000" and body["level"] == "provincial"


async def test_client_credentials_with_wrong_secret_or_unknown_client_is_401_invalid_client(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    sa = await create_service_account(client, admin_token)
    wrong = assert_unauthenticated(await client_credentials(client, sa["client_id"], "not-the-secret"),
                                   "invalid_client")
    unknown = assert_unauthenticated(await client_credentials(client, "sa-doesnotexist", sa["client_secret"]),
                                     "invalid_client")
    assert wrong["detail"] == unknown["detail"]


async def test_deactivated_service_account_token_is_rejected_and_it_cannot_get_a_new_one(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    sa = await create_service_account(client, admin_token)
    token = (await client_credentials(client, sa["client_id"], sa["client_secret"])).json()["access_token"]
    r = await client.patch(f"/api/v1/service-accounts/{sa['id']}", json={"active": False},
                           headers=bearer(admin_token) | {"If-Match": f'"{sa["version"]}"'})
    assert r.status_code == 200, r.text
    assert_unauthenticated(await me(client, token))
    assert_unauthenticated(await client_credentials(client, sa["client_id"], sa["client_secret"]), "invalid_client")


async def test_client_credentials_grant_accepts_client_secret_as_http_basic(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    sa = await create_service_account(client, admin_token)
    r = await client.post(TOKEN_URL, data={"grant_type": "client_credentials"},
                          auth=(sa["client_id"], sa["client_secret"]))
    assert r.status_code == 200, r.text


async def test_wrong_password_and_unknown_user_get_the_same_401_problem(
    client: httpx.AsyncClient, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    wrong = await password_grant(client, "xihu.inspector", "wrong-password-123")
    unknown = await password_grant(client, "nobody.here", "wrong-password-123")
    b_wrong = assert_unauthenticated(wrong, "invalid_credentials")
    b_unknown = assert_unauthenticated(unknown, "invalid_credentials")
    for field in ("type", "title", "status", "detail", "code"):
        assert b_wrong[field] == b_unknown[field], field
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    # Both failures are counted, existing user or not (committed although the answer is 401).
    for name in ("xihu.inspector", "nobody.here"):
        row = await throttle_row(sessionmaker, name)
        assert row is not None and row.failures == 1, name


async def test_inactive_user_with_correct_password_gets_the_same_401_as_a_wrong_password(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    r = await client.post("/api/v1/users", headers=bearer(admin_token), json={
        "username": "dormant.user", "password": USER_PASSWORD, "display_name": "dormant",
        "region_code": "330106", "roles": ["inspector"], "active": False})
    assert r.status_code == 201, r.text
    inactive = assert_unauthenticated(await password_grant(client, "dormant.user", USER_PASSWORD),
                                      "invalid_credentials")
    wrong = assert_unauthenticated(await password_grant(client, "dormant.user", "not-the-password"),
                                   "invalid_credentials")
    assert inactive["detail"] == wrong["detail"]


async def test_unsupported_grant_type_is_422_problem(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data={"grant_type": "authorization_code", "code": "abc"})
    assert_problem(r, 422, "unsupported_grant_type")


@pytest.mark.parametrize("form", [
    pytest.param({"grant_type": "password", "username": "admin"}, id="password-without-password"),
    pytest.param({"grant_type": "password", "password": ADMIN_PASSWORD}, id="password-without-username"),
    pytest.param({"grant_type": "password", "username": "", "password": ADMIN_PASSWORD}, id="empty-username"),
    pytest.param({"grant_type": "client_credentials", "client_id": "sa-x"}, id="client-without-secret"),
    pytest.param({"grant_type": "client_credentials", "client_secret": "s"}, id="client-without-id"),
    pytest.param({}, id="empty-form"),
])
async def test_token_request_with_missing_fields_is_422_invalid_request(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    assert_problem(await client.post(TOKEN_URL, data=form), 422, "invalid_request")


async def test_token_request_with_oversized_username_is_422_validation_problem(client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_URL, data={"grant_type": "password", "username": "u" * 500, "password": "x"})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"] and body["errors"][0]["loc"][-1] == "username"


@pytest.mark.parametrize("payload", [
    pytest.param({}, id="missing-refresh-token"),
    pytest.param({"refresh_token": "short"}, id="too-short"),
    pytest.param({"refresh_token": "x" * 20, "extra": 1}, id="unknown-field"),
])
async def test_refresh_with_invalid_body_is_422_validation_problem(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    body = assert_problem(await client.post(REFRESH_URL, json=payload), 422, "validation_error")
    assert body["errors"]


# --- access-token validation -----------------------------------------------------------------------


async def test_hand_built_token_with_every_claim_right_is_accepted(
    client: httpx.AsyncClient, settings: Settings, admin_id: str
) -> None:
    """Control for the rejections below: the forging helpers produce acceptable tokens."""
    r = await me(client, sign(settings, access_claims_for(settings, admin_id)))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == admin_id


def _expired(s: Settings, sub: str) -> str:
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    return sign(s, access_claims_for(s, sub, iat=past - 900, nbf=past - 900, exp=past))


def _just_expired_beyond_leeway(s: Settings, sub: str) -> str:
    now = int(datetime.now(UTC).timestamp())
    return sign(s, access_claims_for(s, sub, iat=now - 900, nbf=now - 900, exp=now - 30))


def _not_yet_valid(s: Settings, sub: str) -> str:
    now = int(datetime.now(UTC).timestamp())
    return sign(s, access_claims_for(s, sub, nbf=now + 600, exp=now + 1200))


def _signed_with_other_key(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub), key=OTHER_KEY)


def _signature_bytes_changed(s: Settings, sub: str) -> str:
    head, body, sig = sign(s, access_claims_for(s, sub)).split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def _signature_stripped(s: Settings, sub: str) -> str:
    head, body, _ = sign(s, access_claims_for(s, sub)).split(".")
    return f"{head}.{body}."


def _payload_changed(s: Settings, sub: str) -> str:
    head, _, sig = sign(s, access_claims_for(s, sub)).split(".")
    forged = access_claims_for(s, sub, exp=int(datetime.now(UTC).timestamp()) + 10 * 365 * 86400)
    return f"{head}.{b64url(forged)}.{sig}"


def _payload_changed_subject(s: Settings, sub: str) -> str:
    claims = access_claims_for(s, sub)
    head, _, sig = sign(s, claims).split(".")
    return f"{head}.{b64url(claims | {'sub': str(uuid.uuid4())})}.{sig}"


def _wrong_audience(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub, aud="some-other-api"))


def _wrong_issuer(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub, iss="https://evil.example"))


def _alg_none(s: Settings, sub: str) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": s.jwt_active_kid}
    return f"{b64url(header)}.{b64url(access_claims_for(s, sub))}."


def _alg_none_capitalised_with_signature(s: Settings, sub: str) -> str:
    claims = access_claims_for(s, sub)
    _, _, sig = sign(s, claims).split(".")
    header = {"alg": "None", "typ": "JWT", "kid": s.jwt_active_kid}
    return f"{b64url(header)}.{b64url(claims)}.{sig}"


def _hs512_with_right_key(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub), algorithm="HS512")


def _unknown_kid(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub), kid="no-such-kid")


def _missing_kid(s: Settings, sub: str) -> str:
    return jwt.encode(access_claims_for(s, sub), s.key_set[s.jwt_active_kid], algorithm="HS256")


def _missing(claim: str) -> Callable[[Settings, str], str]:
    def build(s: Settings, sub: str) -> str:
        return sign(s, access_claims_for(s, sub, **{claim: None}))
    return build


def _refresh_type(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub, typ="refresh", fam=str(uuid.uuid4())))


def _unknown_subject(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub, sub=str(uuid.uuid4())))


def _subject_not_a_uuid(s: Settings, sub: str) -> str:
    return sign(s, access_claims_for(s, sub, sub="admin"))


def _garbage(s: Settings, sub: str) -> str:
    return "not-a-jwt-at-all"


BAD_TOKENS: list[Any] = [
    pytest.param(_expired, id="expired"),
    pytest.param(_just_expired_beyond_leeway, id="expired-30s-ago"),
    pytest.param(_not_yet_valid, id="nbf-in-future"),
    pytest.param(_signed_with_other_key, id="signature-from-other-key"),
    pytest.param(_signature_bytes_changed, id="signature-bit-flipped"),
    pytest.param(_signature_stripped, id="signature-stripped"),
    pytest.param(_payload_changed, id="payload-exp-extended"),
    pytest.param(_payload_changed_subject, id="payload-sub-swapped"),
    pytest.param(_wrong_audience, id="wrong-audience"),
    pytest.param(_wrong_issuer, id="wrong-issuer"),
    pytest.param(_alg_none, id="alg-none"),
    pytest.param(_alg_none_capitalised_with_signature, id="alg-None-with-signature"),
    pytest.param(_hs512_with_right_key, id="alg-hs512"),
    pytest.param(_unknown_kid, id="unknown-kid"),
    pytest.param(_missing_kid, id="missing-kid"),
    pytest.param(_missing("jti"), id="missing-jti"),
    pytest.param(_missing("exp"), id="missing-exp"),
    pytest.param(_missing("iat"), id="missing-iat"),
    pytest.param(_missing("sub"), id="missing-sub"),
    pytest.param(_missing("aud"), id="missing-aud"),
    pytest.param(_missing("iss"), id="missing-iss"),
    pytest.param(_missing("typ"), id="missing-typ"),
    pytest.param(_refresh_type, id="typ-refresh"),
    pytest.param(_unknown_subject, id="subject-does-not-exist"),
    pytest.param(_subject_not_a_uuid, id="subject-not-a-uuid"),
    pytest.param(_garbage, id="not-a-jwt"),
]


@pytest.mark.parametrize("build", BAD_TOKENS)
async def test_bad_access_token_is_rejected_with_401_problem(
    client: httpx.AsyncClient, settings: Settings, admin_id: str, build: Callable[[Settings, str], str]
) -> None:
    assert_unauthenticated(await me(client, build(settings, admin_id)))


async def test_real_refresh_token_used_as_access_token_is_rejected(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    assert_unauthenticated(await me(client, pair["refresh_token"]))
    assert_unauthenticated(await client.get("/api/v1/users", headers=bearer(pair["refresh_token"])))


async def test_access_token_used_as_refresh_token_is_rejected(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    assert_unauthenticated(await do_refresh(client, pair["access_token"]))


async def test_forged_refresh_token_with_valid_signature_but_unknown_jti_is_rejected(
    client: httpx.AsyncClient, settings: Settings, admin_id: str
) -> None:
    forged = sign(settings, access_claims_for(settings, admin_id, typ="refresh", fam=str(uuid.uuid4())))
    assert_unauthenticated(await do_refresh(client, forged))


# --- key rotation ----------------------------------------------------------------------------------


async def test_token_signed_with_older_kid_still_in_key_set_is_accepted_after_rotation(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, user: dict[str, Any]
) -> None:
    old_kid = settings.jwt_active_kid
    old_pair = await login(client, "xihu.inspector", USER_PASSWORD)
    assert token_header(old_pair["access_token"])["kid"] == old_kid

    rotated = settings_with(jwt_keys=json.dumps(settings.key_set | {"rot-2": OTHER_KEY}), jwt_active_kid="rot-2")
    app.state.settings = rotated  # the app fixture restores its settings after the test
    r = await me(client, old_pair["access_token"])
    assert r.status_code == 200, r.text

    new_pair = await login(client, "xihu.inspector", USER_PASSWORD)
    assert token_header(new_pair["access_token"])["kid"] == "rot-2"
    assert token_header(new_pair["refresh_token"])["kid"] == "rot-2"
    assert (await me(client, new_pair["access_token"])).status_code == 200

    # A refresh token from before the rotation still refreshes, into tokens of the new key.
    r = await do_refresh(client, old_pair["refresh_token"])
    assert r.status_code == 200, r.text
    assert token_header(r.json()["access_token"])["kid"] == "rot-2"

    # The kid picks the key: the old kid with the new key's signature is refused.
    claims = access_claims_for(rotated, user["id"])
    assert_unauthenticated(await me(client, sign(rotated, claims, kid=old_kid, key=OTHER_KEY)))


async def test_token_signed_with_kid_removed_from_key_set_is_rejected(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, user: dict[str, Any]
) -> None:
    old_pair = await login(client, "xihu.inspector", USER_PASSWORD)
    retired = settings_with(jwt_keys=json.dumps({"rot-2": OTHER_KEY}), jwt_active_kid="rot-2")
    app.state.settings = retired  # the app fixture restores its settings after the test
    assert_unauthenticated(await me(client, old_pair["access_token"]))
    assert_unauthenticated(await do_refresh(client, old_pair["refresh_token"]))


# --- refresh rotation ------------------------------------------------------------------------------


async def test_refresh_returns_a_new_pair_and_retires_the_old_refresh_token(
    client: httpx.AsyncClient, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    first = await login(client, "xihu.inspector", USER_PASSWORD)
    r = await do_refresh(client, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["token_type"] == "bearer" and second["expires_in"] > 0
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await me(client, second["access_token"])).status_code == 200

    old_claims, new_claims = token_payload(first["refresh_token"]), token_payload(second["refresh_token"])
    assert old_claims["fam"] == new_claims["fam"]
    family = await refresh_rows(sessionmaker, family_id=uuid.UUID(old_claims["fam"]))
    by_jti = {str(row.jti): row for row in family}
    assert set(by_jti) == {old_claims["jti"], new_claims["jti"]}
    assert by_jti[old_claims["jti"]].used_at is not None
    assert by_jti[new_claims["jti"]].used_at is None
    assert all(row.revoked_at is None for row in family)


async def test_reused_refresh_token_is_refused_and_revokes_the_whole_family(
    client: httpx.AsyncClient, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    first = await login(client, "xihu.inspector", USER_PASSWORD)
    second = (await do_refresh(client, first["refresh_token"])).json()

    assert_unauthenticated(await do_refresh(client, first["refresh_token"]), "refresh_token_reused")
    # The legitimate-looking newest token of the same login is now refused too.
    assert_unauthenticated(await do_refresh(client, second["refresh_token"]), "invalid_token")

    fam = uuid.UUID(token_payload(first["refresh_token"])["fam"])
    family = await refresh_rows(sessionmaker, family_id=fam)
    assert len(family) == 2
    assert all(row.revoked_at is not None and row.revoked_reason == "reuse_detected" for row in family)
    async with sessionmaker() as s:
        audited = (await s.execute(text(
            "SELECT count(*) FROM audit_event WHERE action = 'auth.refresh_reuse_detected' AND entity_id = :u"
        ), {"u": user["id"]})).scalar_one()
    assert audited == 1

    # Another login of the same user is a different family and keeps working.
    other = await login(client, "xihu.inspector", USER_PASSWORD)
    assert (await do_refresh(client, other["refresh_token"])).status_code == 200


async def test_family_revocation_on_reuse_is_committed_although_the_answer_is_401(
    live_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Against an app whose transactions really commit: the revocation must survive the 401."""
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    await create_user(live_client, admin, username="live.refresh", region_code="330106", roles=["inspector"])
    first = await login(live_client, "live.refresh", USER_PASSWORD)
    second = (await do_refresh(live_client, first["refresh_token"])).json()

    assert_unauthenticated(await do_refresh(live_client, first["refresh_token"]), "refresh_token_reused")

    fam = token_payload(first["refresh_token"])["fam"]
    async with engine.connect() as conn:  # a separate connection sees only committed rows
        rows = (await conn.execute(text(
            "SELECT revoked_at IS NOT NULL, revoked_reason FROM refresh_token WHERE family_id = :f"
        ), {"f": fam})).all()
    assert len(rows) == 2
    assert all(revoked and reason == "reuse_detected" for revoked, reason in rows)
    assert_unauthenticated(await do_refresh(live_client, second["refresh_token"]))


async def test_concurrent_refreshes_with_one_token_issue_at_most_one_new_pair(
    live_client: httpx.AsyncClient
) -> None:
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    await create_user(live_client, admin, username="live.race", region_code="330106", roles=["inspector"])
    pair = await login(live_client, "live.race", USER_PASSWORD)
    results = await asyncio.gather(*(do_refresh(live_client, pair["refresh_token"]) for _ in range(4)))
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in results]
    # The first loser detects the reuse and revokes the family; the others then find it revoked.
    codes = sorted(assert_problem(r, 401)["code"] for r in results if r.status_code != 200)
    assert codes == ["invalid_token", "invalid_token", "refresh_token_reused"]
    assert_unauthenticated(await do_refresh(live_client, winners[0].json()["refresh_token"]))


# --- logout ----------------------------------------------------------------------------------------


async def test_logout_revokes_refresh_token_and_the_access_token_sent_with_it(
    client: httpx.AsyncClient, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    other_login = await login(client, "xihu.inspector", USER_PASSWORD)

    r = await client.post(LOGOUT_URL, json={"refresh_token": pair["refresh_token"]},
                          headers=bearer(pair["access_token"]))
    assert r.status_code == 204, r.text

    assert_unauthenticated(await do_refresh(client, pair["refresh_token"]))
    assert_unauthenticated(await me(client, pair["access_token"]))

    access_jti = token_payload(pair["access_token"])["jti"]
    async with sessionmaker() as s:
        assert await s.get(RevokedAccessToken, access_jti) is not None
    rows = await refresh_rows(sessionmaker, jti=uuid.UUID(token_payload(pair["refresh_token"])["jti"]))
    assert rows[0].revoked_at is not None and rows[0].revoked_reason == "logout"

    # Logging out one login leaves the user's other logins alone.
    assert (await me(client, other_login["access_token"])).status_code == 200
    assert (await do_refresh(client, other_login["refresh_token"])).status_code == 200


async def test_logout_without_access_token_still_revokes_the_refresh_token(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    r = await client.post(LOGOUT_URL, json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 204, r.text
    assert_unauthenticated(await do_refresh(client, pair["refresh_token"]))


async def test_logout_with_unknown_refresh_token_is_401(
    client: httpx.AsyncClient, settings: Settings, admin_id: str
) -> None:
    forged = sign(settings, access_claims_for(settings, admin_id, typ="refresh", fam=str(uuid.uuid4())))
    assert_unauthenticated(await client.post(LOGOUT_URL, json={"refresh_token": forged}))
    assert_unauthenticated(await client.post(LOGOUT_URL, json={"refresh_token": "x" * 40}))


# --- lock-out --------------------------------------------------------------------------------------


async def _fail(client: httpx.AsyncClient, username: str, times: int) -> None:
    for i in range(times):
        assert_unauthenticated(await password_grant(client, username, f"wrong-password-{i}"), "invalid_credentials")


def _assert_locked(r: httpx.Response, settings: Settings) -> dict[str, Any]:
    body = assert_problem(r, 429, "login_locked")
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= settings.login_lockout_seconds + 1
    return body


async def test_login_is_locked_after_configured_failures_even_with_the_correct_password(
    client: httpx.AsyncClient, settings: Settings, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    await _fail(client, "xihu.inspector", settings.login_lockout_after)
    _assert_locked(await password_grant(client, "xihu.inspector", USER_PASSWORD), settings)
    _assert_locked(await password_grant(client, "xihu.inspector", "wrong-again"), settings)

    row = await throttle_row(sessionmaker, "xihu.inspector")
    assert row is not None and row.failures == settings.login_lockout_after
    assert row.locked_until is not None
    remaining = (row.locked_until - datetime.now(UTC)).total_seconds()
    assert settings.login_lockout_seconds - 60 < remaining <= settings.login_lockout_seconds


async def test_unknown_username_is_locked_out_exactly_like_an_existing_one(
    client: httpx.AsyncClient, settings: Settings, user: dict[str, Any]
) -> None:
    answers: dict[str, list[tuple[int, str, str]]] = {}
    for name in ("xihu.inspector", "ghost.user"):
        seq = []
        for i in range(settings.login_lockout_after + 1):
            r = await password_grant(client, name, f"wrong-password-{i}")
            body = assert_problem(r, r.status_code)
            seq.append((r.status_code, body["code"], body["detail"]))
        answers[name] = seq
        _assert_locked(r, settings)
    assert answers["xihu.inspector"] == answers["ghost.user"]
    assert [s for s, _, _ in answers["ghost.user"]] == [401] * settings.login_lockout_after + [429]


async def test_changing_the_case_of_the_username_does_not_escape_the_lock(
    client: httpx.AsyncClient, settings: Settings, user: dict[str, Any]
) -> None:
    variants = ["XIHU.INSPECTOR", "Xihu.Inspector", "xihu.INSPECTOR"]
    for i in range(settings.login_lockout_after):
        await _fail(client, variants[i % len(variants)], 1)
    _assert_locked(await password_grant(client, "xihu.inspector", USER_PASSWORD), settings)


async def test_successful_login_before_the_lock_resets_the_failure_counter(
    client: httpx.AsyncClient, settings: Settings, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    await _fail(client, "xihu.inspector", settings.login_lockout_after - 1)
    await login(client, "xihu.inspector", USER_PASSWORD)
    assert await throttle_row(sessionmaker, "xihu.inspector") is None

    await _fail(client, "xihu.inspector", settings.login_lockout_after - 1)
    await login(client, "xihu.inspector", USER_PASSWORD)


async def test_login_works_again_once_the_lock_has_expired(
    client: httpx.AsyncClient, settings: Settings, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    await _fail(client, "xihu.inspector", settings.login_lockout_after)
    _assert_locked(await password_grant(client, "xihu.inspector", USER_PASSWORD), settings)
    past = datetime.now(UTC) - timedelta(seconds=settings.login_failure_window_seconds + 1)
    async with sessionmaker() as s:
        await s.execute(update(LoginThrottle).where(LoginThrottle.username == "xihu.inspector")  # type: ignore[arg-type]
                        .values(locked_until=past, last_failed_at=past))
        await s.commit()
    await login(client, "xihu.inspector", USER_PASSWORD)
    assert await throttle_row(sessionmaker, "xihu.inspector") is None


async def test_concurrent_failed_logins_all_count_and_never_check_more_than_the_lock_allows(
    live_client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """Guesses sent at once: each one whose password is checked is counted before the check, and no
    more passwords are checked than the lock allows. (How many are refused at once with 429 instead,
    slowed or locked, depends on how the requests interleave, so the count is not asserted exactly.)"""
    admin = (await login(live_client, "admin", ADMIN_PASSWORD))["access_token"]
    await create_user(live_client, admin, username="live.lock", region_code="330106", roles=["inspector"])
    attempts = settings.login_lockout_after + 2
    results = await asyncio.gather(*(password_grant(live_client, "live.lock", f"guess-{i}")
                                     for i in range(attempts)))
    assert all(r.status_code in (401, 429) for r in results), [r.status_code for r in results]
    checked = sum(r.status_code == 401 for r in results)
    async with engine.connect() as conn:
        failures = (await conn.execute(text(
            "SELECT failures FROM login_throttle WHERE username = 'live.lock'"))).scalar_one()
    assert checked <= settings.login_lockout_after
    assert checked <= failures <= attempts
    if failures >= settings.login_lockout_after:
        _assert_locked(await password_grant(live_client, "live.lock", USER_PASSWORD), settings)


# --- deactivation ----------------------------------------------------------------------------------


async def test_deactivating_a_user_invalidates_its_access_and_refresh_tokens(
    client: httpx.AsyncClient, admin_token: str, user: dict[str, Any], sessionmaker: Sessions
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    assert (await me(client, pair["access_token"])).status_code == 200

    r = await client.get(f"/api/v1/users/{user['id']}", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    r = await client.patch(f"/api/v1/users/{user['id']}", json={"active": False},
                           headers=bearer(admin_token) | {"If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False

    assert_unauthenticated(await me(client, pair["access_token"]))
    assert_unauthenticated(await do_refresh(client, pair["refresh_token"]))
    assert_unauthenticated(await password_grant(client, "xihu.inspector", USER_PASSWORD), "invalid_credentials")

    rows = await refresh_rows(sessionmaker, user_id=uuid.UUID(user["id"]))
    assert rows and all(row.revoked_at is not None and row.revoked_reason == "deactivated" for row in rows)


async def test_password_change_revokes_the_users_refresh_tokens(
    client: httpx.AsyncClient, admin_token: str, user: dict[str, Any]
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    r = await client.patch(f"/api/v1/users/{user['id']}", json={"password": "a-brand-new-passphrase"},
                           headers=bearer(admin_token) | {"If-Match": f'"{user["version"]}"'})
    assert r.status_code == 200, r.text
    assert_unauthenticated(await do_refresh(client, pair["refresh_token"]))
    assert_unauthenticated(await password_grant(client, "xihu.inspector", USER_PASSWORD), "invalid_credentials")
    await login(client, "xihu.inspector", "a-brand-new-passphrase")


async def test_password_change_makes_existing_access_tokens_fail(
    client: httpx.AsyncClient, admin_token: str, user: dict[str, Any]
) -> None:
    pair = await login(client, "xihu.inspector", USER_PASSWORD)
    r = await client.patch(f"/api/v1/users/{user['id']}", json={"password": "a-brand-new-passphrase"},
                           headers=bearer(admin_token) | {"If-Match": f'"{user["version"]}"'})
    assert r.status_code == 200, r.text
    assert_unauthenticated(await me(client, pair["access_token"]))


# --- unauthenticated requests ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-authorization"),
    pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
    pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4="}, id="basic-scheme"),
    pytest.param({"Authorization": "Token abc"}, id="other-scheme"),
])
async def test_request_without_bearer_token_is_401_with_www_authenticate(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.get("/api/v1/me", headers=headers)
    body = assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    assert body["instance"] == "/api/v1/me"


async def test_every_api_v1_operation_outside_auth_requires_a_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200, r.text
    secured = [
        (method.upper(), path)
        for path, operations in r.json()["paths"].items()
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/auth/")
        for method in operations
    ]
    assert ("GET", "/api/v1/me") in secured and ("POST", "/api/v1/users") in secured
    some_id = str(uuid.uuid4())
    for method, path in secured:
        url = re.sub(r"\{[^}]+\}", some_id, path)
        r = await client.request(method, url)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON), (method, path)
        assert r.headers["www-authenticate"] == "Bearer", (method, path)
