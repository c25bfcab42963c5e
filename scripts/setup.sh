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
# Environments of older pins pile up (5-6 GB each with torch): one no setup has used for 14 days
# is removed. Another clone at another commit marks its own as used whenever it runs setup.
touch "$venv/.last-used"
if [[ -z "${OPINE_VENV:-}" ]]; then
  for old in "$(dirname "$venv")"/venv-*; do
    [[ "$old" != "$venv" && -f "$old/.complete" ]] || continue
    if [[ -z "$(find "$old" -maxdepth 1 -name .last-used -mtime -14)" && -z "$(find "$old" -maxdepth 1 -name .complete -mtime -14)" ]]; then
      echo "setup: removing $old (unused for 14 days)"
      rm -rf "$old"
    fi
  done
fi

[[ $build == yes ]] || exit 0

# --- C++ build ----------------------------------------------------------------------------
bdir=${OPINE_BUILD_DIR:-$root/build}
torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/opine/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
# Configured afresh when the environment or the configuration asked for changed: after a pin
# change the build must not keep linking the old libtorch and testing with the old Python.
config="venv=$venv type=${OPINE_BUILD_TYPE:-RelWithDebInfo} args=${OPINE_CMAKE_ARGS:-}"
stamp="$bdir/.opine-config"
if [[ -f "$bdir/build.ninja" && ! -f "$stamp" ]] &&
  grep -qx "OPINE_PYTHON:FILEPATH=$venv/bin/python" "$bdir/CMakeCache.txt" 2>/dev/null; then
  echo "$config" >"$stamp"  # configured before there was a stamp, against this environment
fi
if [[ ! -f "$bdir/build.ninja" || "$(cat "$stamp" 2>/dev/null)" != "$config" ]]; then
  fresh=()
  if [[ -f "$bdir/CMakeCache.txt" ]]; then
    fresh=(--fresh)
    echo "setup: configuring $bdir afresh ($config)"
  fi
  cmake "${fresh[@]}" -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE="${OPINE_BUILD_TYPE:-RelWithDebInfo}" \
    -DOPINE_TORCH_DIR="$torch_dir" -DOPINE_PYTHON="$venv/bin/python" ${OPINE_CMAKE_ARGS:-}
  echo "$config" >"$stamp"
fi
cmake --build "$bdir" -j "$(nproc)"
