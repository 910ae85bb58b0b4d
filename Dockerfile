# whitened-search: the HTTP service, CPU only, with the default model (all-MiniLM-L6-v2) inside.
#
#   docker build -t whitened-search .
#       torch from PyTorch's CPU wheel index (TORCH_INDEX_URL), everything else from PyPI
#   docker build --build-arg TORCH_SOURCE=wheels -t whitened-search .
#       torch from the torch-*.whl files in ./wheels/ of the build context, for machines that
#       cannot reach PyTorch's index (the rest still comes from PyPI)
#
# Layers go from the least to the most often changed: torch, then the dependencies listed in
# pyproject.toml, then the project's source. Editing index/ or service/ rebuilds only the last
# small layers. See the README's Docker section for compose, the data volume and the settings.

FROM python:3.11-slim AS base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ---- torch, CPU build, in its own stage so that a local wheel never lands in the image -------
FROM base AS torch
ARG TORCH_VERSION=2.13.0
ARG TORCH_SOURCE=index
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# wheel[s] copies the context's wheels/ directory when there is one and nothing otherwise;
# pyproject.toml is only there because some builders refuse a COPY whose sources all match nothing.
COPY pyproject.toml wheel[s] /tmp/torch/
RUN python -m venv /opt/venv \
    && case "$TORCH_SOURCE" in \
        index) pip install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION" ;; \
        wheels) pip install --find-links /tmp/torch --only-binary torch "torch==$TORCH_VERSION" ;; \
        *) echo "TORCH_SOURCE must be 'index' or 'wheels', not '$TORCH_SOURCE'" >&2; exit 2 ;; \
    esac \
    && python -c "import torch; assert torch.version.cuda is None, 'not a CPU build of torch'" \
    && rm -rf /tmp/torch

# ---- the service ------------------------------------------------------------------------------
FROM base AS service
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown app:app /data
COPY --from=torch /opt/venv /opt/venv

# Dependencies (and the build backend) as pyproject.toml lists them: cached until it changes.
COPY pyproject.toml /tmp/src/
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/src/pyproject.toml', 'rb')); \
print('\n'.join(p['build-system']['requires'] + p['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, installed (not editable) from its source; the model ships as a package.
COPY README.m[d] /tmp/src/
COPY index /tmp/src/index
COPY service /tmp/src/service
RUN pip install --no-deps --no-build-isolation /tmp/src \
    && rm -rf /tmp/src \
    && python -c "from index.encoder import bundled_model_path; assert bundled_model_path().is_dir()"

# The ONNX exports of the model (onnx and openvino run one, onnx-int8 the other), made now so
# that the server starts in a second without importing torch, and never writes outside /data.
ENV WHITENED_SEARCH_MODEL_CACHE_DIR=/opt/whitened-search/models
RUN HF_HUB_OFFLINE=1 whitened-search export-model

# Settings are WHITENED_SEARCH_* variables (README); these are the container's defaults.
# The model is in the image: nothing is downloaded at start, and the hub is never asked.
ENV WHITENED_SEARCH_DATA_DIR=/data \
    WHITENED_SEARCH_HOST=0.0.0.0 \
    WHITENED_SEARCH_PORT=8000 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/home/app/.cache/huggingface

LABEL org.opencontainers.image.title="whitened-search" \
      org.opencontainers.image.description="Semantic retrieval with a whitening-compressed FAISS index (CPU)" \
      org.opencontainers.image.licenses="MIT"

USER 10001:10001
WORKDIR /home/app
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('WHITENED_SEARCH_PORT', '8000'), timeout=4)"]

# One uvicorn worker process, on purpose: the process keeps every collection's FAISS index and
# the model in memory, and each collection has a single writer. A second worker would hold a
# second copy of all of it and write the same snapshots; the data directory's lock refuses it.
# Requests run concurrently on the worker's thread pool, where encoding (ONNX Runtime) and search
# (FAISS) release the GIL; concurrent single queries are encoded together (QUERY_BATCH_MS), and
# WHITENED_SEARCH_THREADS caps the encoder's threads.
CMD ["whitened-search", "serve"]

# ---- the same service with Ray (`--target ray`, docker-compose.ray.yml) -----------------------
# The `distributed` extra of pyproject.toml (Ray Data and Serve) on top of the service: every
# container of the Ray cluster runs this image (`ray start`), the head also `serve --ray auto`.
FROM service AS ray
USER 0:0
COPY pyproject.toml /tmp/ray/
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/ray/pyproject.toml', 'rb')); \
print('\n'.join(p['project']['optional-dependencies']['distributed']))" > /tmp/ray/extra.txt \
    && pip install -r /tmp/ray/extra.txt \
    && rm -rf /tmp/ray \
    && python -c "import ray.serve, ray.data"
USER 10001:10001

# ---- the default target: the service without Ray ----------------------------------------------
FROM service
