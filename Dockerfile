# syntax=docker/dockerfile:1
# One image for every service: `docker run IMAGE matcher --partition 0`, `... gateway`, `... topics create`.
#
# deps:    the runtime dependencies and the project (editable, so runtime/native.py finds build/native
#          beside the sources, exactly as on a developer's machine), in /opt/venv.
# native:  deps + a C compiler and mypy; compiles the hot modules with mypyc and FAILS unless
#          `exchange native status` says "compiled": an interpreted matcher runs at half speed.
# final:   deps' venv, the sources and the compiled modules; no compiler, no mypy.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY exchange ./exchange
COPY schemas ./schemas
COPY matcher ./matcher
COPY gateway ./gateway
COPY relay ./relay
COPY history ./history
COPY runtime ./runtime
COPY bench ./bench
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip==26.3 \
    && /opt/venv/bin/pip install -e . \
    && python -m compileall -q exchange schemas matcher gateway relay runtime bench

FROM deps AS native
# The Debian release of the base image fixes these packages' versions; pinning them here would
# only break the build at the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN /opt/venv/bin/pip install "mypy>=1.10" types-PyYAML
# `native status` exits non-zero unless it prints {"native": "compiled", ...}: that fails the build.
RUN /opt/venv/bin/exchange native build && /opt/venv/bin/exchange native status

FROM ${PYTHON_IMAGE} AS final
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXCHANGE_DATA_DIR=/var/lib/exchange \
    EXCHANGE_CACHE_DIR=/tmp/exchange-cache \
    EXCHANGE_LOG_FORMAT=json
RUN groupadd --system --gid 10001 exchange \
    && useradd --system --uid 10001 --gid exchange --home-dir /var/lib/exchange --create-home exchange
COPY --from=deps /opt/venv /opt/venv
COPY --from=deps /app /app
COPY --from=native /app/build/native /app/build/native
WORKDIR /app
# The compiled modules must load here too, without the compiler and mypy of the native stage.
RUN exchange native status
USER 10001:10001
EXPOSE 8080 8090 8070 9100
ENTRYPOINT ["exchange"]
CMD ["--help"]
