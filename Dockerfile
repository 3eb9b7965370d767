# The logpipe image: the `logpipe` CLI (sidecar: `logpipe tail`, one-shot: `logpipe es setup`)
# and the demo service (FastAPI under uvicorn). One image keeps the compose stack small;
# the service you run is chosen by the compose `command:`.
# The wheel (with the Rust core, logpipe._core) is built in a throw-away stage that has a Rust
# toolchain; the runtime image only installs it.
FROM python:3.11-slim AS wheel
RUN apt-get update && apt-get install -y --no-install-recommends curl gcc libc6-dev ca-certificates \
    && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY logpipe ./logpipe
RUN pip install 'maturin>=1.7,<2' && maturin build --release --out /wheels

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first so editing the demo does not reinstall them.
COPY --from=wheel /wheels /wheels
RUN pip install "$(ls /wheels/logpipe-*.whl)[web]" 'httpx>=0.27' && rm -rf /wheels

COPY demo ./demo

# Unprivileged user; /logs is the shared log volume, /var/lib/logpipe holds checkpoints.
RUN useradd --system --uid 10001 --home-dir /app logpipe \
    && mkdir -p /logs /var/lib/logpipe \
    && chown logpipe /logs /var/lib/logpipe
USER logpipe

# 8000: demo service; 9464: sidecar /metrics and /healthz.
EXPOSE 8000 9464
CMD ["logpipe", "--help"]
