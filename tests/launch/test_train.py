"""`opine train` / `opine eval` as a user runs them, on the tiny model and dataset of
tests/reference/trainer_fixture.py (transformers-written weights, a tokenizers-trained BPE).

Losses are float32 sums over the same examples; runs that must be identical (same seed, resume)
are compared exactly, runs that differ only in how the global batch is spread over ranks within
1e-5 relative (summation order of float32 gradients).
"""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

from tiny_fixture import BIN, LORA, MODEL_AND_DATA, MPIEXEC, REF, TASK, losses, opine

TOL = 1e-5

CONFIG = MODEL_AND_DATA + TASK + LORA + """train:
  epochs: 1
  sampler: {{batch_size: 8, seed: 3}}
  optimizer: {{lr: 0.03, weight_decay: 0.01}}
  schedule: {{kind: linear, warmup_steps: 2}}
  eval_every: 4
  eval_batch_size: 16
  checkpoint: {{keep_last: 2}}
seed: 5
"""


class TinyRuns(unittest.TestCase):
    """A temporary folder with the tiny configuration, shared by a class's tests."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="opine-train-"))
        cls.config = cls.tmp / "train.yaml"
        cls.config.write_text(CONFIG.format(model=REF / "model", data=REF / "data", cache=cls.tmp / "cache"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)


class Train(TinyRuns):
    def run_dir(self, name):
        return self.tmp / name

    def train(self, name, *overrides, mpi=0, resume=False):
        args = ["train", "--config", self.config, f"train.run_dir={self.run_dir(name)}", *overrides]
        if resume:
            args.append("--resume")
        p = opine(*args, mpi=mpi)
        return json.loads(p.stdout[p.stdout.index("{"):]) if "{" in p.stdout else None

    def test_run_folder_learning_and_reload(self):
        out = self.train("basic", "train.epochs=4", "train.class_weights=balanced")
        run = self.run_dir("basic")
        for f in ("config.yaml", "manifest.json", "metrics.jsonl", "final_metrics.json",
                  "adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
            self.assertTrue((run / f).exists(), f)
        self.assertTrue(any(p.name.startswith("events.out.tfevents") for p in (run / "events").iterdir()))
        manifest = json.loads((run / "manifest.json").read_text())
        for key in ("world_size", "hosts", "seed", "data_cache_hash", "opine", "libtorch"):
            self.assertIn(key, manifest)
        ckpts = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-"))
        self.assertLessEqual(len(ckpts), 3, ckpts)  # keep_last 2 + the best
        # It learned: validation accuracy beats always answering the majority class.
        val = (REF / "data" / "val.csv").read_text().splitlines()[1:]
        majority = max(sum(l.split(",")[-2] == c for l in val) for c in ("favor", "against")) / len(val)
        acc = out["eval"]["accuracy"]
        print(f"tiny stance: accuracy {acc:.3f} vs majority {majority:.3f}")
        self.assertGreater(acc, majority + 0.1)
        # The head and adapter survive save and reload: opine eval gives the same metrics.
        ev = json.loads(opine("eval", "--config", run / "config.yaml", "--adapter", run / "adapter").stdout)
        for key in ("accuracy", "f1_macro", "loss"):
            self.assertAlmostEqual(ev["eval"][key], out["eval"][key], places=6, msg=key)

    def test_same_seed_same_losses_and_resume_equals_straight(self):
        self.train("a", "train.max_steps=8", "train.eval_every=0")
        self.train("b", "train.max_steps=8", "train.eval_every=0")
        self.assertEqual(losses(self.run_dir("a")), losses(self.run_dir("b")))
        # 8 straight == stop at 5 (as at a time limit) + resume for the rest.
        self.train("r", "train.max_steps=8", "train.eval_every=0", "train.checkpoint.every=1", "train.stop_at_step=5")
        self.assertFalse((self.run_dir("r") / "adapter").exists())
        # A checkpoint torn mid-write (no COMPLETE marker) is ignored.
        torn = self.run_dir("r") / "checkpoints" / "step-000006.tmp"
        torn.mkdir()
        (torn / "trainer_state.json").write_text("{")
        self.train("r", "train.max_steps=8", "train.eval_every=0", "train.checkpoint.every=1", resume=True)
        self.assertEqual(losses(self.run_dir("a")), losses(self.run_dir("r")))

    def test_regression_sft_prompt_tuning_and_head_only_train(self):
        cases = {
            "regression": ["data.dataset.task=regression", "data.dataset.label_column=score",
                           "data.dataset.classes=[]"],
            "sft": ["data.format=sft"],
            # A soft prompt or the head alone over a random tiny model moves the loss little: only "down" is asked.
            "prompt": ["peft.method=prompt_tuning", "peft.prompt_tuning.num_virtual_tokens=4", "train.optimizer.lr=0.003"],
            "head": ["peft.method=none", "train.optimizer.lr=0.003"],
        }
        for name, overrides in cases.items():
            self.train(name, "train.epochs=3", "train.eval_every=1", "train.max_steps=30", *overrides)
            evals = [json.loads(l)["eval/loss"] for l in (self.run_dir(name) / "metrics.jsonl").read_text().splitlines()
                     if "eval/loss" in l]
            print(f"{name}: validation loss {evals[0]:.4f} after one step -> {evals[-1]:.4f} after 30")
            self.assertLess(evals[-1], (0.99 if name in ("prompt", "head") else 0.9) * evals[0], name)
            self.assertTrue((self.run_dir(name) / "final_metrics.json").exists())

    def test_gradient_accumulation_equals_the_larger_batch(self):
        # 2 micro-batches of 4 per step == batches of 8: the same examples, the same mean.
        self.train("acc8", "train.max_steps=6", "train.eval_every=0")
        self.train("acc4x2", "train.max_steps=6", "train.eval_every=0", "train.sampler.batch_size=4",
                   "train.grad_accumulation=2")
        want, got = losses(self.run_dir("acc8")), losses(self.run_dir("acc4x2"))
        self.assertEqual(sorted(want), sorted(got))
        for step in want:
            self.assertLess(abs(got[step] - want[step]) / abs(want[step]), TOL, step)

    def test_early_stopping_and_class_weights(self):
        # With lr 0 nothing improves after the first evaluation: patience 2 stops at the third.
        self.train("stop", "train.optimizer.lr=0", "train.eval_every=1", "train.patience=2",
                   "train.class_weights=balanced", "train.max_steps=10")
        evals = [json.loads(l) for l in (self.run_dir("stop") / "metrics.jsonl").read_text().splitlines()
                 if "eval/loss" in l]
        self.assertEqual([e["step"] for e in evals], [1, 2, 3])

    def test_sigterm_checkpoints_and_stops(self):
        # A job at its time limit gets SIGTERM (or the sbatch script's USR1): the run finishes
        # its step, checkpoints, exits 0, and --resume completes it.
        import signal
        import time
        run = self.run_dir("signal")
        cmd = [BIN, "train", "--config", str(self.config), f"train.run_dir={run}", "train.max_steps=400",
               "train.eval_every=0", "train.log_every=1"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").exists():
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("signalled", err)
        stopped = max(losses(run))
        self.assertLess(stopped, 400)
        self.assertTrue(any((run / "checkpoints").glob(f"step-{stopped:06d}")))
        self.train("signal", "train.max_steps=400", "train.eval_every=0", resume=True)
        self.assertEqual(max(losses(run)), 400)

    def test_bad_config_key_is_named(self):
        p = opine("train", "--config", self.config, "train.optimiser.lr=1", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("optimiser", p.stderr)


@unittest.skipUnless(MPIEXEC, "no mpiexec")
class TrainMpi(TinyRuns):
    """mpirun -np 2 on CPU (MPI back end): every sharding mode equals one rank on the same global
    batch, for LoRA on a 4-bit base; a sharded 4-bit run resumes exactly."""

    def train(self, name, *overrides, mpi=0, resume=False):
        args = ["train", "--config", self.config, f"train.run_dir={self.tmp / name}", "model.quant=nf4",
                "train.max_steps=6", "train.eval_every=3", *overrides]
        if resume:
            args.append("--resume")
        opine(*args, mpi=mpi)
        return losses(self.tmp / name)

    def test_modes_equal_one_rank_and_sharded_resume(self):
        one = self.train("one", "train.sampler.batch_size=8")
        self.assertEqual(len(one), 6)
        for mode in ("full_shard", "shard_grad_op", "replicate"):
            two = self.train(mode, "train.sampler.batch_size=4", f"train.shard.mode={mode}", mpi=2)
            for step, loss in one.items():
                err = abs(two[step] - loss) / abs(loss)
                print(f"{mode}: step {step} loss {two[step]:.8f} vs one rank {loss:.8f} (rel {err:.2e})")
                self.assertLess(err, TOL, (mode, step))
        # Sharded 4-bit run: 6 straight (the full_shard run above) == stop at 4 + resume.
        self.train("resume", "train.sampler.batch_size=4", "train.checkpoint.every=1", "train.stop_at_step=4", mpi=2)
        resumed = self.train("resume", "train.sampler.batch_size=4", "train.checkpoint.every=1", mpi=2, resume=True)
        self.assertEqual(resumed, losses(self.tmp / "full_shard"))


def have_cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


@unittest.skipUnless(have_cuda(), "no CUDA device")
class TrainGpu(TinyRuns):
    """One rank on CUDA (the NCCL back end, as every CUDA run uses it) logs the CPU run's losses
    within 1e-4 relative (float32 kernels that differ in summation order over 6 steps)."""

    def test_cuda_run_matches_cpu(self):
        runs = {}
        for device in ("cpu", "cuda"):
            p = opine("train", "--config", self.config, f"train.run_dir={self.tmp / device}", f"model.device={device}",
                      "model.quant=nf4", "train.max_steps=6", "train.eval_every=3")
            runs[device] = losses(self.tmp / device)
            if device == "cuda":
                self.assertIn("nccl", p.stderr)
        for step, loss in runs["cpu"].items():
            self.assertLess(abs(runs["cuda"][step] - loss) / abs(loss), 1e-4, step)


if __name__ == "__main__":
    unittest.main(verbosity=2)
