# smart-model-manager images (see docs/kubernetes.md, "The image").
#
#   runtime (default)  smm + the lean extras (onnx, server, sign): serve, validate (signed locks too), pull,
#                      mirror. NO torch.
#   export             runtime + torch/transformers: `smm export onnx` in a container (build machine or CI;
#                      docs/kubernetes.md, "A Hub model without ONNX files").
#   gpu                CUDA torch + transformers: the service on GPU nodes (deploy/k3s/components/gpu).
#
# The build needs no network: it installs from a wheel folder built on the host (WHEELS, default
# build/wheels) with `pip install --no-index --find-links`. Make that folder with:
#   python -m pip wheel --wheel-dir build/wheels '.[onnx,server,sign]' 'setuptools>=77' wheel
#   docker build -t smart-model-manager:0.1.0 .            # or: podman build -t ... .
#   docker build --target export -t smart-model-manager:0.1.0-export .   # wheels of '.[export,onnx,server,sign]'
# Another base: --build-arg BASE=... (any Debian-like image with python3 >= 3.10 and its venv module).
ARG BASE=python:3.11-slim

# ---- build: a virtual environment in /opt/smm, from wheels only ------------------------------------
FROM ${BASE} AS build
ARG WHEELS=build/wheels
ENV PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY ${WHEELS}/ /wheels/
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
RUN python3 -m venv /opt/smm \
 && /opt/smm/bin/pip install --no-index --find-links /wheels "/src[onnx,server,sign]" \
 && /opt/smm/bin/smm --version \
 && /opt/smm/bin/python -c "import onnxruntime, tokenizers, fastapi, uvicorn, prometheus_client, model_signing" \
 && /opt/smm/bin/python -c "import importlib.util as u, sys; bad = [m for m in ('torch', 'transformers') if u.find_spec(m)]; sys.exit('runtime image must not contain ' + ', '.join(bad) if bad else 0)" \
 && /opt/smm/bin/python -m compileall -q /opt/smm/lib \
 && rm -rf /src/src/*.egg-info

# ---- build-export: the same venv plus torch/transformers (provisioning-time ONNX export) ---------
FROM build AS build-export
# torch ships test helpers in Python 3.12 syntax (torch/testing/_internal/py312_intrinsics.py) that no
# import here reaches; compileall would fail the build on them, so that folder is not precompiled.
RUN /opt/smm/bin/pip install --no-index --find-links /wheels "/src[export,onnx,server,sign]" \
 && /opt/smm/bin/python -c "import torch, transformers, onnx" \
 && /opt/smm/bin/python -m compileall -q -x '/torch/testing/_internal/' /opt/smm/lib

# ---- common runtime layout: non-root uid, read-only root, only /tmp writable ----------------------
FROM ${BASE} AS base-runtime
ARG UID=10001
# HOME and every cache point into /tmp (an emptyDir in the pod): the root filesystem stays read-only.
ENV PATH=/opt/smm/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/hf-home \
    XDG_CACHE_HOME=/tmp/.cache \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SMM_VOLUME_DIR=/app/models
# /app/models is owned by the runtime uid: podman and docker copy the mount point's owner and mode onto an
# empty named volume, so the provisioning Job (same uid) can write it. /app/lock is the lock's mount point.
RUN mkdir -p /app/models /app/lock \
 && chown ${UID}:${UID} /app/models \
 && chmod 0755 /app/models /app/lock
WORKDIR /tmp
USER ${UID}:${UID}
ENTRYPOINT ["smm"]
CMD ["serve", "sentiment", "--host", "0.0.0.0", "--port", "8000"]
EXPOSE 8000

# ---- export target: torch included, for provisioning Jobs that export ONNX ------------------------
FROM base-runtime AS export
COPY --from=build-export /opt/smm /opt/smm

# ---- build-gpu: CUDA torch + transformers, for GPU nodes (deploy/k3s/components/gpu, docs/gpu.md) --------
# A separate image: the default runtime stays torch-free. CUDA torch wheels bundle the CUDA libraries (the
# driver comes from the node through the NVIDIA container runtime). Wheels, on a host with the PyTorch index:
#   python -m pip wheel --wheel-dir build/wheels-gpu --extra-index-url https://download.pytorch.org/whl/cu124 \
#       torch '.[torch,onnx,server]' 'setuptools>=77' wheel
#   docker build --target gpu -t smart-model-manager-gpu:0.1.0 .          # or: podman build ...
FROM ${BASE} AS build-gpu
ARG WHEELS_GPU=build/wheels-gpu
ENV PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
# The CUDA wheels are about 3 GB: bind-mounted for the install, never copied into a layer (a copy stays in the
# build cache and needs its size twice more on disk while layers are committed). Needs podman/buildah or
# Docker's BuildKit (the default since Docker 23).
RUN --mount=type=bind,source=${WHEELS_GPU},target=/wheels \
    python3 -m venv /opt/smm \
 && /opt/smm/bin/pip install --no-index --find-links /wheels "/src[torch,onnx,server]" \
 && /opt/smm/bin/python -c "import sys, torch, transformers; sys.exit(0 if torch.version.cuda else 'the gpu image needs a CUDA build of torch (wheels from the PyTorch CUDA index), got ' + torch.__version__)" \
 && /opt/smm/bin/python -m compileall -q -x '/torch/testing/_internal/' /opt/smm/lib \
 && rm -rf /src/src/*.egg-info

# ---- gpu target: the sentiment service on a GPU; SMM_DEVICE=cuda refuses to start without one --------------
FROM base-runtime AS gpu
COPY --from=build-gpu /opt/smm /opt/smm
ENV SMM_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
LABEL org.opencontainers.image.title="smart-model-manager-gpu" \
      org.opencontainers.image.description="smm sentiment service with CUDA torch (GPU nodes)" \
      org.opencontainers.image.licenses="Apache-2.0"

# ---- runtime target (the default: last stage) -----------------------------------------------------
FROM base-runtime AS runtime
COPY --from=build /opt/smm /opt/smm
LABEL org.opencontainers.image.title="smart-model-manager" \
      org.opencontainers.image.description="smm: verified model volumes, HF mirror, sentiment service (ONNX runtime, no torch)" \
      org.opencontainers.image.licenses="Apache-2.0"
