# zkdrift container image.
#
#   docker build -t zkdrift .                      # CLI / Prefect serve image (default)
#   docker build --target jupyter -t zkdrift-jupyter .
#
# The builder stage turns the source tree into a wheel and installs it, with
# its dependencies, into a virtual environment at /opt/venv. Later stages copy
# only that environment: no source tree, build tools or pip cache is shipped.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

###############################################################################
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# Only what the wheel is made of (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY src/ src/
COPY flows/ flows/
COPY tasks/ tasks/
# flows/, tasks/ and notebooks/ are linked into src/zkdrift and ship in the wheel
# as zkdrift.flows, zkdrift.tasks and package data (zkdrift/reports/notebooks), where
# `zkdrift report` and the report flow find them.
COPY notebooks/ notebooks/

RUN python -m venv /opt/venv \
    && pip wheel --no-deps --wheel-dir /build/dist . \
    && /opt/venv/bin/pip install --no-cache-dir /build/dist/zkdrift-*.whl

###############################################################################
# Shared runtime: the virtual environment and an unprivileged user.
FROM ${PYTHON_IMAGE} AS base

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/zkdrift \
    ZKDRIFT_HOME=/var/lib/zkdrift

# git: 'zkdrift desired sync' (and the pipeline) fetch desired state from Git
# repositories. Not pinned: bookworm's security updates replace the version in
# place, and a pin would break the build on the next one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# ZKDRIFT_HOME (rendered reports, the fallback SQLite file) exists in the image
# owned by the app user, so a fresh named volume mounted there is writable.
RUN groupadd --system --gid 10001 zkdrift \
    && useradd --system --uid 10001 --gid zkdrift \
        --home-dir /home/zkdrift --create-home --shell /usr/sbin/nologin zkdrift \
    && mkdir -p /var/lib/zkdrift/reports \
    && chown -R zkdrift:zkdrift /var/lib/zkdrift

COPY --from=builder /opt/venv /opt/venv

WORKDIR /home/zkdrift

###############################################################################
# Notebook server for the reports (docker compose --profile reports up).
FROM base AS jupyter

ARG JUPYTERLAB_VERSION=4.6.6

# Notebooks and the reports they render live side by side under the lab root.
ENV ZKDRIFT_HOME=/home/zkdrift/work

LABEL org.opencontainers.image.title="zkdrift-jupyter" \
      org.opencontainers.image.description="JupyterLab with zkdrift installed, for drift and history reports" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN pip install --no-cache-dir "jupyterlab==${JUPYTERLAB_VERSION}" \
    && mkdir -p /home/zkdrift/work/notebooks /home/zkdrift/work/reports \
    && chown -R zkdrift:zkdrift /home/zkdrift/work

USER 10001:10001
WORKDIR /home/zkdrift/work
EXPOSE 8888

# /api answers without a token, so it shows the server is up without leaking one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8888/api', timeout=4)"]

CMD ["jupyter", "lab", "--ip", "0.0.0.0", "--port", "8888", "--no-browser", "--ServerApp.root_dir=/home/zkdrift/work"]

###############################################################################
# Default target: the zkdrift CLI; `serve` runs the Prefect deployments.
FROM base AS runtime

LABEL org.opencontainers.image.title="zkdrift" \
      org.opencontainers.image.description="Snapshot, diff, reconcile and report on Apache ZooKeeper configuration trees" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"

USER 10001:10001

# The image is healthy when the installed CLI and its dependencies import.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import zkdrift.cli"]

ENTRYPOINT ["zkdrift"]
CMD ["serve"]
