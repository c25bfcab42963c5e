#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine: system packages, the pinned Python
# environment (libtorch + reference libraries), and the C++ build.
#   scripts/setup.sh            install what is missing, then configure and build ./build
#   scripts/setup.sh --no-build install only
# Environment: OPINE_VENV (default ~/.cache/opine/venv-<hash of the requirements>),
#              OPINE_BUILD_DIR (default ./build), OPINE_BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=yes
[[ "${1:-}" == "--no-build" ]] && build=no

# --- Debian packages (bookworm's versions) ---------------------------------------------------
apt_packages=(build-essential cmake ninja-build ccache pkg-config git python3-venv
  libopenmpi-dev openmpi-bin libyaml-cpp-dev libhdf5-dev libcpp-httplib-dev nlohmann-json3-dev
  libsentencepiece-dev libgtest-dev libpcre2-dev libicu-dev wordnet-base libssl-dev postgresql)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python environment -------------------------------------------------------------------
# Keyed by the requirements' hash, so clones share one environment and a pin change makes a new one.
venv=$("$root/scripts/venv-path.sh")
if [[ ! -f "$venv/.complete" ]]; then
  echo "setup: creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip==26.3
  "$venv/bin/python" -m pip install -q -r "$root/scripts/requirements.txt"
  "$venv/bin/python" -m pip install -q --no-deps -r "$root/scripts/requirements-nodeps.txt"
  touch "$venv/.complete"
fi

[[ $build == yes ]] || exit 0

# --- C++ build ----------------------------------------------------------------------------
bdir=${OPINE_BUILD_DIR:-$root/build}
torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/opine/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
if [[ ! -f "$bdir/build.ninja" ]]; then
  cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE="${OPINE_BUILD_TYPE:-RelWithDebInfo}" \
    -DOPINE_TORCH_DIR="$torch_dir" -DOPINE_PYTHON="$venv/bin/python" ${OPINE_CMAKE_ARGS:-}
fi
cmake --build "$bdir" -j "$(nproc)"
