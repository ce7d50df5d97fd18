# Product Quality-Safety Regulator API.
#   docker build -t pqs-regulator .
#   docker compose up        (see compose.yaml: PostgreSQL 17 beside it, secrets from the environment)
# At start the container runs `python -m app.cli serve`: apply migrations, load reference data,
# create the bootstrap admin when there is no user, then serve on 0.0.0.0:8000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=prod \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000

WORKDIR /app

# The service and its dependencies, at the pinned versions.
COPY pyproject.toml constraints.txt ./
COPY app ./app
RUN pip install -c constraints.txt . \
 && rm -rf build ./*.egg-info

# Migrations are read from the working directory: app.migrations looks for alembic.ini and
# alembic/ next to the `app` package it runs from, and `python -m` from /app imports /app/app.
COPY alembic.ini ./
COPY alembic ./alembic

RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin app
USER app

EXPOSE 8000

# No curl in the slim image: probe liveness with the standard library.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('APP_PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "app.cli", "serve"]
