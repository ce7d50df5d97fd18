"""Settings refuse the public development secrets in production or beyond loopback."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.config import DEV_ADMIN_PASSWORD, DEV_JWT_KEYS, DEV_WEBHOOK_KEY, Settings

PROD_SECRETS = {"jwt_keys": json.dumps({"2026-1": "x" * 40}), "jwt_active_kid": "2026-1",
                "bootstrap_admin_password": "a-real-password-for-prod", "webhook_key": "w" * 40}
DEV = {"jwt_keys": {"jwt_keys": DEV_JWT_KEYS, "jwt_active_kid": "dev-1"},
       "bootstrap_admin_password": {"bootstrap_admin_password": DEV_ADMIN_PASSWORD},
       "webhook_key": {"webhook_key": DEV_WEBHOOK_KEY}}


@pytest.mark.parametrize("dev", sorted(DEV))
def test_prod_refuses_each_dev_secret(dev: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(env="prod", **(PROD_SECRETS | DEV[dev]))
    assert f"APP_{dev.upper()}" in str(err.value)


def test_prod_starts_with_its_own_secrets_and_beyond_loopback_needs_them_too() -> None:
    assert Settings(env="prod", **PROD_SECRETS).webhook_key == "w" * 40
    with pytest.raises(ValidationError, match="APP_WEBHOOK_KEY"):
        Settings(env="dev", host="0.0.0.0", **(PROD_SECRETS | DEV["webhook_key"]))  # noqa: S104


def test_the_access_log_can_be_turned_off_and_errors_still_log() -> None:
    from app.logging_setup import logging_config

    off = logging_config(Settings(access_log=False))["loggers"]
    assert off["uvicorn.access"]["level"] == "WARNING"  # uvicorn logs each request at INFO
    assert off["uvicorn.error"]["level"] == off[""]["level"] == Settings().log_level
    assert logging_config(Settings())["loggers"]["uvicorn.access"]["level"] == Settings().log_level  # the default
