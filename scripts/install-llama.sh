#!/usr/bin/env bash
# Install llama-cpp-python built with one fixed set of CPU kernels, so that the embedded model's
# greedy answers are the same on every machine of a kind (docs/reproducibility.md).
#
#   scripts/install-llama.sh PYTHON VERSION BUILD
#
# BUILD: auto (default: portable where the CPU has AVX2/FMA/F16C/BMI2, else baseline), portable
# (x86-64-v3 kernels: AVX2 + FMA + F16C + BMI2, no AVX-512/AMX), baseline (SSE only: any x86-64,
# ~2x slower), native (llama.cpp's default: every instruction of this CPU; fastest, answers
# differ between machines, and on some VMs the AMX kernels crash).
#
# The wheel is built once per (version, build) into a wheelhouse outside the project
# ($ALIASGATE_WHEELHOUSE, default ~/.cache/aliasgate/wheels) and reused afterwards: pip's own
# cache keys a built wheel by the source archive only, not by CMAKE_ARGS, so it would hand back a
# wheel built with other flags.
set -euo pipefail
python=$1 version=$2 build=${3:-auto}
wheelhouse=${ALIASGATE_WHEELHOUSE:-$HOME/.cache/aliasgate/wheels}
common="-DLLAVA_BUILD=OFF -DGGML_OPENMP=ON"
off512="-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_AVX_VNNI=OFF"
if [ "$build" = auto ]; then
  build=native
  if [ "$(uname -m)" = x86_64 ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    build=baseline
    if [[ " $flags " == *" avx2 "* && " $flags " == *" fma "* && " $flags " == *" f16c "* && " $flags " == *" bmi2 "* ]]; then
      build=portable
    fi
  fi
fi
case "$build" in
  portable) cmake="$common -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON $off512" ;;
  baseline) cmake="$common -DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF $off512" ;;
  native)   cmake="$common -DGGML_NATIVE=ON" ;;
  *) echo "install-llama.sh: unknown build '$build' (auto, portable, baseline, native)" >&2; exit 2 ;;
esac
dir="$wheelhouse/llama-cpp-python-$version-$build"
wheel=$(ls "$dir"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $version ($build kernels; ~6-8 min on 2 cores, once per machine)"
  mkdir -p "$dir"
  CMAKE_ARGS="$cmake" "$python" -m pip wheel -q --no-deps --no-cache-dir -w "$dir" "llama-cpp-python==$version"
  wheel=$(ls "$dir"/llama_cpp_python-"$version"-*.whl | head -n 1)
fi
"$python" -m pip install -q --no-deps --force-reinstall "$wheel"
echo "llama-cpp-python $version: $build kernels ($wheel)"
