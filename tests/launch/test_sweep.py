"""`opine sweep` end to end on CPU: the Optuna service (launch/optuna_service.py, SQLite) and the
coordinator under `mpirun -np 2`, tiny trials of the trainer fixture's LoRA classifier.

Four trials: two sensible learning rates enqueued first, then a deliberately useless one (1e-7:
its validation loss stays where it started) that the MedianPruner stops at its first report, then
one from the TPE sampler. The study, read with Optuna itself, holds exactly those trials; each
trial is a run folder with its trial.json. A coordinator killed in the middle of a trial and
started again finishes the sweep without duplicate trials (the request ids bring the same trials
back; the interrupted one resumes from its checkpoint).
"""
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import optuna
from tiny_fixture import BIN, LORA, MODEL_AND_DATA, MPIEXEC, REF, TASK, opine

ROOT = pathlib.Path(__file__).resolve().parents[2]

BASE = MODEL_AND_DATA + TASK + LORA + """train:
  epochs: 2
  sampler: {{batch_size: 16, seed: 3}}
  optimizer: {{lr: 0.03, weight_decay: 0.01}}
  eval_every: 4
  eval_batch_size: 32
  checkpoint: {{every: 2, keep_last: 1}}
eval: {{plots: false}}
seed: 5
"""

SWEEP = """
sweep:
  study: {study}
  base: {base}
  trials: {trials}
  metric: loss
  sampler: {{name: TPESampler, args: {{seed: "0"}}}}
  pruner: {{name: MedianPruner, args: {{n_startup_trials: "2", n_warmup_steps: "0"}}}}
  space:
    train.optimizer.lr: {{type: float, low: 1.0e-7, high: 0.05, log: true}}
    peft.lora.r: {{type: int, low: 2, high: 8, step: 2}}
  enqueue:
{enqueue}
  runs_dir: {runs}
train: {{max_steps: {max_steps}}}
"""


class Sweep(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="opine-sweep-"))
        self.base = self.tmp / "base.yaml"
        self.base.write_text(BASE.format(model=REF / "model", data=REF / "data", cache=self.tmp / "cache"))
        self.storage = f"sqlite:///{self.tmp / 'optuna.db'}"
        self.service = subprocess.Popen([sys.executable, str(ROOT / "launch" / "optuna_service.py"), "--storage",
                                         self.storage, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        line = self.service.stdout.readline()
        self.assertIn("listening on", line, self.service.stderr.read() if self.service.poll() is not None else "")
        self.url = line.split()[2]

    def tearDown(self):
        self.service.terminate()
        self.service.wait(timeout=30)
        self.service.stdout.close()
        self.service.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_sweep(self, study, trials, enqueue, max_steps=12):
        path = self.tmp / f"{study}.yaml"
        lines = "\n".join(f"    {name}: {{train.optimizer.lr: \"{lr}\", peft.lora.r: \"4\"}}" for name, lr in enqueue)
        path.write_text(SWEEP.format(study=study, base=self.base, trials=trials, enqueue=lines or "    {}",
                                     runs=self.tmp / "runs", max_steps=max_steps))
        return path

    def trials(self, study):
        return optuna.load_study(study_name=study, storage=self.storage).get_trials(deepcopy=False)

    @unittest.skipUnless(MPIEXEC, "no mpiexec")
    def test_four_trials_under_two_ranks_one_pruned(self):
        config = self.write_sweep("tiny", 4, [("a-good", "0.03"), ("b-good", "0.02"), ("c-useless", "1e-07")])
        p = opine("sweep", "--config", config, "--optuna-url", self.url, mpi=2)
        summary = json.loads(p.stdout[p.stdout.index("["):])
        trials = self.trials("tiny")
        states = [t.state.name for t in trials]
        print("trials:", [(t.number, t.state.name, t.params, t.value) for t in trials])
        self.assertEqual(len(trials), 4)
        self.assertEqual(trials[2].params["train.optimizer.lr"], 1e-7)
        self.assertEqual(states[2], "PRUNED")
        self.assertEqual(states.count("COMPLETE") + states.count("PRUNED"), 4)
        best = optuna.load_study(study_name="tiny", storage=self.storage).best_trial
        self.assertEqual(summary[0]["best"][0]["number"], best.number)
        self.assertEqual(summary[0]["best"][0]["params"], best.params)
        for t in trials:
            record = json.loads((self.tmp / "runs" / "tiny" / f"trial-{t.number}" / "trial.json").read_text())
            self.assertEqual(record["state"], t.state.name)
            self.assertEqual(record["trial"], t.number)
            if t.state.name == "COMPLETE":
                self.assertAlmostEqual(record["value"], t.value, places=12)
                self.assertTrue((self.tmp / "runs" / "tiny" / f"trial-{t.number}" / "adapter").is_dir())

    @unittest.skipUnless(MPIEXEC, "no mpiexec")
    def test_groups_of_ranks_run_trials_side_by_side(self):
        config = self.write_sweep("groups", 4, [("a", "0.03")], max_steps=4)
        config.write_text(config.read_text().replace("  trials: 4", "  trials: 4\n  ranks_per_trial: 1"))
        opine("sweep", "--config", config, "--optuna-url", self.url, mpi=2)
        trials = self.trials("groups")
        self.assertEqual(len(trials), 4)
        groups = [json.loads((self.tmp / "runs" / "groups" / f"trial-{t.number}" / "trial.json").read_text())["group"]
                  for t in trials]
        self.assertEqual(sorted(groups), [0, 0, 1, 1])  # trial indices 0, 2 on group 0; 1, 3 on group 1
        self.assertTrue(all(t.state.name in ("COMPLETE", "PRUNED") for t in trials))

    def test_a_crashed_trial_is_failed_and_the_sweep_goes_on(self):
        config = self.write_sweep("crash", 2, [("diverges", "0.05")])
        # A learning rate far outside its distribution is refused by Optuna; instead make the
        # trial itself fail: a LoRA rank the model cannot take.
        text = config.read_text().replace('peft.lora.r: "4"', 'peft.lora.r: "0"').replace("low: 2,", "low: 0,")
        config.write_text(text)
        opine("sweep", "--config", config, "--optuna-url", self.url)
        states = [t.state.name for t in self.trials("crash")]
        self.assertEqual(states[0], "FAIL")
        self.assertEqual(len(states), 2)
        record = json.loads((self.tmp / "runs" / "crash" / "trial-0" / "trial.json").read_text())
        self.assertIn("error", record)

    def test_topics_one_study_each_or_one_study_with_the_topic_as_parameter(self):
        for topic in ("alpha", "beta"):
            shutil.copy(self.base, self.tmp / f"base-{topic}.yaml")
        config = self.write_sweep("topics", 1, [], max_steps=4)
        text = config.read_text().replace(f"base: {self.base}", f"base: {self.tmp}/base-{{topic}}.yaml")
        config.write_text(text.replace("  trials: 1", "  trials: 1\n  topics: [alpha, beta]"))
        opine("sweep", "--config", config, "--optuna-url", self.url)
        self.assertEqual(len(self.trials("topics-alpha")), 1)
        self.assertEqual(len(self.trials("topics-beta")), 1)
        config.write_text(config.read_text().replace("  topics: [alpha, beta]", "  topics: [alpha, beta]\n  topic_mode: parameter"))
        opine("sweep", "--config", config, "--optuna-url", self.url)
        self.assertEqual(sorted(t.params["topic"] for t in self.trials("topics")), ["alpha", "beta"])

    def test_a_service_that_is_down_is_named(self):
        config = self.write_sweep("down", 1, [])
        config.write_text(config.read_text().replace("  trials: 1", "  trials: 1\n  retries: 2"))
        p = opine("sweep", "--config", config, "--optuna-url", "http://127.0.0.1:9", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not reachable after 2 attempts", p.stderr)
        self.assertIn("retrying in", p.stderr)

    def test_killed_coordinator_resumes_without_duplicates(self):
        config = self.write_sweep("resume", 3, [("a", "0.03"), ("b", "0.02")], max_steps=24)
        proc = subprocess.Popen([BIN, "sweep", "--config", str(config), "--optuna-url", self.url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill it once trial 1 has its first checkpoint.
        ckpt = self.tmp / "runs" / "resume" / "trial-1" / "checkpoints"
        deadline = time.time() + 300
        while time.time() < deadline and not (ckpt.is_dir() and any(p.name.startswith("step-") for p in ckpt.iterdir())):
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        before = self.trials("resume")
        self.assertEqual([t.state.name for t in before][:2], ["COMPLETE", "RUNNING"])
        p = opine("sweep", "--config", config, "--optuna-url", self.url)
        self.assertIn("resumed", p.stderr)
        after = self.trials("resume")
        self.assertEqual(len(after), 3, [(t.number, t.state.name) for t in after])
        self.assertEqual([t.state.name for t in after][:2], ["COMPLETE"] * 2)  # the interrupted one finished
        self.assertIn(after[2].state.name, ("COMPLETE", "PRUNED"))  # the sampler's pick may be pruned
        self.assertEqual(after[0].value, before[0].value)  # the finished trial was not run again


if __name__ == "__main__":
    unittest.main()
