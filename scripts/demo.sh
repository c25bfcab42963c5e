#!/usr/bin/env bash
# opine's main job, for now: a real pretrained model continues a prompt. Sets up what is missing,
# builds, shows what the model is, and generates greedily.
#   scripts/demo.sh ["prompt"]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" >&2
data=${OPINE_DATA_ROOT:-$root/../shared/data}
model="$data/models/stories260K-llama2.c/data/stories260K.bin"
[[ -f "$model" ]] || { echo "demo: $model not found (set OPINE_DATA_ROOT)" >&2; exit 1; }
opine="${OPINE_BUILD_DIR:-$root/build}/bin/opine"
"$opine" inspect "$model"
echo
"$opine" generate --model "$model" --prompt "${1:-Once upon a time, there was a girl named Lily. One day}" \
  --max-new-tokens 200
