# syntax=docker/dockerfile:1
# One image for every role (web, CPU worker, GPU worker, trainer); docker/entrypoint.sh picks the role.
#
# Build arguments
#   EXTRAS           pyproject extras, comma-separated: "" (web, CPU worker), "gpu" (vLLM worker),
#                    "train" (trainer). Build gpu and train as separate images: vLLM pins its own torch.
#   TORCH_INDEX_URL  where torch comes from when EXTRAS contains "train". Empty = PyPI, whose Linux
#                    x86_64 wheels bundle CUDA 12 (the right choice for an NVIDIA trainer).
#                    CPU-only image (smaller, no GPU): https://download.pytorch.org/whl/cpu
#                    A specific CUDA build:            https://download.pytorch.org/whl/cu126
#   TORCH_VERSION    pin torch (e.g. 2.6.0); empty = newest allowed by pyproject.toml.
#
#   docker build -t evalplatform .
#   docker build -t evalplatform-gpu --build-arg EXTRAS=gpu .
#   docker build -t evalplatform-train --build-arg EXTRAS=train .
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG EXTRAS=""
ARG TORCH_INDEX_URL=""
ARG TORCH_VERSION=""

ENV DEBUG=0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EVALPLATFORM_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/data/media \
    HF_HOME=/data/models/huggingface

# Triton (used by vLLM and torch.compile) compiles small C launchers at run time: it needs a C compiler.
RUN case ",${EXTRAS}," in \
      *,gpu,*|*,train,*) \
        apt-get update \
        && apt-get install -y --no-install-recommends gcc libc6-dev \
        && rm -rf /var/lib/apt/lists/* ;; \
    esac

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/var /data/media /data/models/huggingface \
    && chown -R app:app /app/var /data

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall them
# (the gpu and train layers are several GB).
COPY pyproject.toml ./
RUN python -c 'import os, tomllib; \
project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extras = [e.strip() for e in os.environ["EXTRAS"].split(",") if e.strip()]; \
reqs = project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]; \
print("\n".join(reqs))' > /tmp/requirements.txt \
    && case ",${EXTRAS}," in \
         *,train,*) pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch${TORCH_VERSION:+==$TORCH_VERSION}" ;; \
       esac \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, editable: settings find templates/ and static/ next to the evalplatform package,
# so the code must run from /app rather than from a copy in site-packages.
COPY . .
RUN pip install --no-deps -e . \
    && DEBUG=1 python manage.py collectstatic --noinput \
    && chmod 0755 docker/entrypoint.sh

USER app
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
