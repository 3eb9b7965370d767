# The logpipe image: the `logpipe` CLI (sidecar: `logpipe tail`, one-shot: `logpipe es setup`)
# and the demo service (FastAPI under uvicorn). One image keeps the compose stack small;
# the service you run is chosen by the compose `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first so editing the demo does not reinstall them.
COPY pyproject.toml README.md ./
COPY logpipe ./logpipe
RUN pip install '.[web]' 'httpx>=0.27'

COPY demo ./demo

# Unprivileged user; /logs is the shared log volume, /var/lib/logpipe holds checkpoints.
RUN useradd --system --uid 10001 --home-dir /app logpipe \
    && mkdir -p /logs /var/lib/logpipe \
    && chown logpipe /logs /var/lib/logpipe
USER logpipe

# 8000: demo service; 9464: sidecar /metrics and /healthz.
EXPOSE 8000 9464
CMD ["logpipe", "--help"]
