# syntax=docker/dockerfile:1
# Build a wheel in one stage, install it into a slim runtime image in the next.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tracker ./tracker
COPY cli ./cli
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data rhythm \
    && mkdir -p /data && chown rhythm /data && chmod 0700 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER rhythm
ENV RHYTHM_DATA_DIR=/data \
    RHYTHM_HOST=0.0.0.0 \
    RHYTHM_PORT=8080
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health/ready')"
# SIGTERM lets in-flight requests finish (aiohttp graceful shutdown).
STOPSIGNAL SIGTERM
CMD ["rhythm", "serve"]
