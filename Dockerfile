# nodeloom API server / worker image (the same image runs both; the command picks the role).
FROM python:3.11-slim-bookworm AS web
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src/web
COPY web/package.json web/package-lock.json web/.npmrc ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 NODELOOM_DATA_DIR=/data NODELOOM_LOG_FORMAT=json
RUN apt-get update && apt-get install -y --no-install-recommends libvulkan1 libomp5-14 \
    && rm -rf /var/lib/apt/lists/* && useradd --create-home --uid 10001 nodeloom
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src/ src/
COPY scripts/install-models.sh scripts/
RUN pip install '.[scale]' && bash scripts/install-models.sh pip
COPY --from=web /src/web/dist web/dist
RUN mkdir -p /data && chown nodeloom /data
USER nodeloom
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request;urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["nodeloom", "serve", "--host", "0.0.0.0", "--port", "8000"]
