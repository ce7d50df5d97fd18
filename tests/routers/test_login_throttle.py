"""Lock-out under concurrency and the slowdown, which answers at once instead of holding a connection."""

import asyncio

from app.config import get_settings
from tests.conftest import ADMIN_PASSWORD

TOKEN_URL = "/api/v1/auth/token"


async def attempt(client, password: str, username: str = "admin"):
    return await client.post(TOKEN_URL, data={"grant_type": "password", "username": username, "password": password})


async def test_concurrent_guesses_check_at_most_lockout_after_passwords(live_client):
    limit = get_settings().login_lockout_after
    answers = await asyncio.gather(*(attempt(live_client, f"wrong-{i}") for i in range(4 * limit)))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {401, 429}
    assert codes.count(401) <= limit, codes
    r = await attempt(live_client, ADMIN_PASSWORD)
    assert r.status_code == 429 and r.json()["code"] == "login_locked"


async def test_slowdown_answers_429_with_retry_after_then_lets_the_next_attempt_through(app, client):
    slow = get_settings().model_copy(update={"login_slowdown_after": 2, "login_slowdown_base_seconds": 30.0,
                                             "login_slowdown_max_seconds": 60.0})
    app.state.settings = slow  # the app fixture restores its settings after the test
    for _ in range(2):
        assert (await attempt(client, "nope", "ghost")).status_code == 401
    r = await attempt(client, "nope", "ghost")
    assert r.status_code == 429 and r.json()["code"] == "login_slowed"
    assert 25 <= int(r.headers["retry-after"]) <= 30
    # a slowed attempt is answered without checking the password, and does not count as a failure
    r = await attempt(client, ADMIN_PASSWORD, "ghost")
    assert r.json()["code"] == "login_slowed"
    app.state.settings = slow.model_copy(update={"login_slowdown_base_seconds": 0.0})
    assert (await attempt(client, "nope", "ghost")).status_code == 401


async def test_usernames_are_one_account_regardless_of_case(client, admin_token):
    from tests.conftest import bearer, create_user

    await create_user(client, admin_token, username="Wang.Fang", region_code="330106", roles=["inspector"])
    r = await client.post("/api/v1/users", headers=bearer(admin_token), json={
        "username": "wang.fang", "password": "correct-horse-battery", "display_name": "x",
        "region_code": "330106", "roles": ["inspector"]})
    assert r.status_code == 409 and r.json()["code"] == "username_taken"
    assert (await attempt(client, "correct-horse-battery", "WANG.FANG")).status_code == 200
