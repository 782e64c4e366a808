# One image for the four services: `python -m services.<name>` picks which one runs.
FROM python:3.11.15-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, from the hash-checked lock: a change to the code reuses this layer.
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --require-hashes --no-deps -r requirements/runtime.txt && useradd --system --uid 10001 clinic

COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY infra ./infra
COPY schemas ./schemas
RUN pip install --no-deps --no-build-isolation .

USER clinic
ENV CLINIC_HTTP_HOST=0.0.0.0 CLINIC_HTTP_PORT=8080 CLINIC_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"
CMD ["python", "-m", "services.consultation"]
