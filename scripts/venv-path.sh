#!/usr/bin/env bash
# Prints the path of the project's Python environment (see setup.sh).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -n "${OPINE_VENV:-}" ]]; then echo "$OPINE_VENV"; exit 0; fi
hash=$(cat "$root/scripts/requirements.txt" "$root/scripts/requirements-nodeps.txt" | sha256sum | cut -c1-12)
echo "${XDG_CACHE_HOME:-$HOME/.cache}/opine/venv-$hash"
