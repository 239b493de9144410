# The image of every service: query-api (HTTP 8001), rerun-api (8002) and the analyzer
# (health and metrics on 8003). skaffold.yaml passes the build arguments:
#   SERVICE  the directory under services/ and the console script the image runs
#   MODULE   its Python package (the dev stage watches it)
#   PORT     the port it listens on
#   DEV_STOP_SECONDS  how long the dev stage waits for a restarted service to stop
# and where registries are reachable nothing else is needed (the official python and uv
# images are the defaults):
#   docker build --build-arg SERVICE=query-api --build-arg MODULE=query_api \
#     --build-arg PORT=8001 -t flokraft-query-api .
# Without registry access, `make images` (scripts/build-images.sh) builds the same file on
# a base made from Debian packages: PYTHON_IMAGE=local/python:bookworm, UV_IMAGE=local/uv.
# Behind a TLS-inspecting proxy, give the build the proxy's CA bundle as a secret (read by
# uv only while it downloads; it is never written into a layer):
#   DOCKER_BUILDKIT=1 docker build --secret id=extra-ca,src=/etc/ssl/certs/ca-certificates.crt ...
# No `# syntax=` line: the Dockerfile frontend built into BuildKit (Docker 20.10+) reads
# the cache and secret mounts, so no frontend image is pulled.
# Build context is the repository root, because the uv workspace (root pyproject.toml and
# the one uv.lock) lives there. tests/deploy/test_images.py replays this file's build stage
# (its COPY and `uv sync` lines) into a clean virtualenv for each service, and
# tests/containers builds and runs the images themselves.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
# The same uv that wrote uv.lock, so `--frozen` reads the lock format it expects.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
COPY --from=uv /uv /usr/local/bin/uv
# UV_PYTHON_PREFERENCE=only-system: the base image's interpreter, whichever path it has
# (/usr/local/bin on the official image, /usr/bin on Debian's).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Every workspace member's pyproject.toml, not only ours: uv must see the whole workspace
# to trust the lock (tests/deploy/test_images.py keeps this list, .dockerignore and the
# workspace members equal). Copied before any source so the dependency layer survives
# code edits.
COPY pyproject.toml uv.lock ./
COPY libs/flokraft-core/pyproject.toml libs/flokraft-core/
COPY services/query-api/pyproject.toml services/query-api/
COPY services/rerun-api/pyproject.toml services/rerun-api/
COPY services/analyzer/pyproject.toml services/analyzer/
COPY tools/pubsub-emulator/pyproject.toml tools/pubsub-emulator/
COPY tools/devstack/pyproject.toml tools/devstack/
COPY tools/observability/pyproject.toml tools/observability/
# The optional extra-ca secret: when given, uv trusts that bundle (SSL_CERT_FILE) instead
# of its built-in roots; without it the mount is an empty path and uv keeps its own.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=extra-ca,target=/run/secrets/extra-ca \
    SSL_CERT_FILE="$(test -s /run/secrets/extra-ca && echo /run/secrets/extra-ca)" \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package flokraft-${SERVICE}
COPY libs/flokraft-core/ libs/flokraft-core/
COPY services/${SERVICE}/ services/${SERVICE}/
# --no-editable installs our packages as wheels, so the runtime needs the venv and nothing
# from /src.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=extra-ca,target=/run/secrets/extra-ca \
    SSL_CERT_FILE="$(test -s /run/secrets/extra-ca && echo /run/secrets/extra-ca)" \
    uv sync --frozen --no-dev --no-editable --package flokraft-${SERVICE}
# One name for the service's console script: an exec-form ENTRYPOINT cannot expand
# build arguments.
RUN ln -s "/app/.venv/bin/${SERVICE}" /app/.venv/bin/flokraft-service

# Shared by the runtime image and the dev image; no compilers, no uv, no sources.
FROM ${PYTHON_IMAGE} AS base
ARG PORT
# A fixed high uid/gid so the pod's runAsUser/runAsGroup can match it numerically and it
# never collides with a uid on the node.
RUN groupadd --system --gid 10001 flokraft \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin flokraft
# Owned by root on purpose: the service user can read and run the code but not change it.
COPY --from=build /app/.venv /app/.venv
# WORK_DIR is where the analyzer keeps a fetched video (the APIs ignore it).
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WORK_DIR=/tmp
WORKDIR /app
EXPOSE ${PORT}

# `skaffold dev` target: restarts the service when skaffold syncs a .py file into
# site-packages. The synced packages must be writable by the service user for that.
FROM base AS dev
ARG MODULE
ARG DEV_STOP_SECONDS=10
# The venv's site-packages depends on the base's Python version: ask the venv, and link it
# to one fixed path the entrypoint watches.
RUN site="$(/app/.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && chown -R 10001:10001 "$site/${MODULE}" "$site/flokraft_core" \
    && ln -s "$site" /app/site-packages
ENV SERVICE_PACKAGES="/app/site-packages/${MODULE} /app/site-packages/flokraft_core" \
    DEV_STOP_SECONDS=${DEV_STOP_SECONDS}
USER 10001:10001
# A shell only to expand the two variables; `exec` leaves watchfiles as PID 1.
ENTRYPOINT ["/bin/sh", "-c", "exec watchfiles --filter python --sigint-timeout \"$DEV_STOP_SECONDS\" flokraft-service $SERVICE_PACKAGES"]

# The production image (the default, last stage).
FROM base AS runtime
USER 10001:10001
# Exec form: the service is PID 1 and gets SIGTERM itself. The APIs then stop accepting
# connections and finish in-flight requests; the worker stops pulling and lets the running
# job finish for SHUTDOWN_GRACE_SECONDS (the pod's grace period is longer).
STOPSIGNAL SIGTERM
ENTRYPOINT ["flokraft-service"]
