"""What the command-line tests on the tiny trainer fixture share: the opine binary, the fixture
(tests/reference/trainer_fixture.py: a transformers-written Llama, a tokenizers BPE, CSV splits),
the model and data part of their configurations, and running opine (alone or under mpirun)."""
import json
import os
import pathlib
import subprocess

BIN = os.environ["OPINE_BIN"]
REFDIR = pathlib.Path(os.environ["OPINE_REFERENCE_DIR"])
REF = REFDIR / "trainer"
MPIEXEC = os.environ.get("OPINE_MPIEXEC", "")

# The model and dataset blocks; format() with model, data and cache (doubled braces are YAML's).
MODEL_AND_DATA = """
model: {{path: {model}, dtype: f32}}
data:
  dataset:
    name: tiny-stance
    task: binary
    format: csv
    splits:
      train: {{path: train.csv}}
      val: {{path: val.csv}}
    classes: [against, favor]
  data_root: {data}
  chat: false
  max_length: 48
  cache_dir: {cache}
"""


# The task (a bare template) and the LoRA adapter the tiny runs train.
TASK = """task:
  instruction: "Tweet: {{text}}"
  labels: [against, favor]
"""
LORA = """peft:
  method: lora
  lora: {{r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj, up_proj]}}
"""


def opine(*args, mpi=0, check=True, timeout=600):
    cmd = [BIN, *map(str, args)]
    if mpi:
        cmd = [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", str(mpi), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def losses(run):
    """{step: training loss} from a run's metrics.jsonl."""
    out = {}
    for line in (pathlib.Path(run) / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "loss" in r:
            out[r["step"]] = r["loss"]
    return out


def eval_losses(run):
    """The validation losses of a run's evaluations, in order."""
    return [json.loads(line)["eval/loss"] for line in (pathlib.Path(run) / "metrics.jsonl").read_text().splitlines()
            if "eval/loss" in line]
