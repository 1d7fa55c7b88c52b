# gpucnn on cloud GPUs: the gpucnn command with CuPy for CUDA 12, running as a non-root user.
#
#   docker build -t gpucnn .
#   docker run --rm --gpus all gpucnn                      # gpucnn info
#   docker run --rm --gpus all -v "$PWD/data:/data" -v "$PWD/runs:/work/runs" gpucnn \
#       train --dataset cifar10 --device cuda
#
# Two stages on the same CUDA image (so the virtual environment's Python is the same in both): the
# first builds the environment with pip and gpucnn's build backend, the second copies only the
# environment. The runtime flavour is used, not devel (which adds nvcc, the static and development
# libraries: gigabytes gpucnn never uses): CuPy compiles gpucnn's kernels at run time with NVRTC,
# which the runtime image has, but since CUDA 12.2 the headers NVRTC needs (cuda_fp16.h and the
# headers it includes) are only in the toolkit's cudart dev package. That package is added, and the
# build stops if the headers are not where CuPy looks for them.

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only what the wheel is built from; .dockerignore keeps the rest of the checkout out of the context.
COPY pyproject.toml README.md /src/
COPY cuda /src/cuda
COPY gpucnn /src/gpucnn
# cuda12: CuPy for CUDA 12 (the driver and NVRTC come from the image, not from pip);
# cli: what train/eval/predict need (progress bars, checkpoints, images, plots, the digits dataset);
# onnx: gpucnn export.
RUN pip install --no-cache-dir "gpucnn[cuda12,cli,onnx] @ file:///src" \
    && gpucnn --version

FROM ${CUDA_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
LABEL org.opencontainers.image.title="gpucnn" \
      org.opencontainers.image.description="A small CNN framework: hand-written CUDA kernels through CuPy on NVIDIA GPUs" \
      org.opencontainers.image.licenses="MIT"
# CUDA_VERSION is set by the base image (e.g. 12.6.3): its headers package is cuda-cudart-dev-12-6.
# Ubuntu 24.04 images come with a user 'ubuntu' holding uid 1000; gpucnn takes that uid instead, the
# one a single-user host most likely owns its data and output folders with.
RUN apt-get update \
    && cuda_series="$(cut -d. -f1,2 <<< "${CUDA_VERSION}" | tr . -)" \
    && apt-get install -y --no-install-recommends python3 "cuda-cudart-dev-${cuda_series}" \
    && rm -rf /var/lib/apt/lists/* \
    && test -f /usr/local/cuda/include/cuda_fp16.h \
    && test -f /usr/local/cuda/include/vector_types.h \
    && (userdel --remove ubuntu 2>/dev/null || true) \
    && (groupdel ubuntu 2>/dev/null || true) \
    && groupadd --gid 1000 gpucnn \
    && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash gpucnn \
    && mkdir -p /cache/cupy /cache/gpucnn /cache/matplotlib /data /work/runs \
    && chown -R 1000:1000 /data /work \
    && chmod 1777 /cache/cupy /cache/gpucnn /cache/matplotlib
COPY --from=build /opt/venv /opt/venv
# CUPY_CACHE_DIR holds the kernels NVRTC compiled (a volume on /cache keeps them between runs). The
# caches are world-writable (sticky, as /tmp) so that `docker run --user UID:GID` works too, where
# HOME may not be writable (matplotlib, for the training plots, gets its own).
ENV PATH=/opt/venv/bin:$PATH \
    CUDA_PATH=/usr/local/cuda \
    CUPY_CACHE_DIR=/cache/cupy \
    GPUCNN_CACHE_DIR=/cache/gpucnn \
    MPLCONFIGDIR=/cache/matplotlib \
    GPUCNN_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
# Numeric, so that a runtime can check it is not root (Kubernetes' runAsNonRoot) without /etc/passwd.
USER 1000:1000
# gpucnn train writes runs/DATASET under the working directory: mount the output folder at /work/runs.
WORKDIR /work
ENTRYPOINT ["gpucnn"]
CMD ["info"]
