"""Every shipped experiment configuration (experiments/**/*.yaml with a `train:` or `data:` section;
experiments/datasets/ holds dataset specs, not configurations) is one a user can run:
`opine config --config FILE` resolves it (unknown keys and wrong types are errors there), the
dataset spec it names exists, its task template passes opine's checks (known placeholders, one
label name per class), its run folder is runs/<file name>, and its header shows the command that
runs it.

Environment (set by tests/CMakeLists.txt): OPINE_BIN, and the data root (OPINE_DATA_ROOT, else
OPINE_DATA_ROOT_DEFAULT) for the spec's files when the shipped data is there.
"""
import os
import pathlib
import re
import subprocess
import sys
import unittest

import yaml

BIN = os.environ["OPINE_BIN"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("OPINE_DATA_ROOT") or os.environ.get("OPINE_DATA_ROOT_DEFAULT") or ROOT)
PROMPT_PLACEHOLDERS = {"text", "topic", "labels", "definitions"}


def configurations():
    out = []
    for path in sorted((ROOT / "experiments").rglob("*.yaml")):
        if "datasets" in path.relative_to(ROOT / "experiments").parts:
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        if ("train" in doc or "data" in doc) and "sweep" not in doc:
            out.append((path, doc))
    return out


def placeholders(pattern):
    return set(re.findall(r"\{([^{}]*)\}", pattern.replace("{{", "").replace("}}", "")))


def opine(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT)


class Experiments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.configs = configurations()

    def test_the_set_is_there(self):
        names = {p.relative_to(ROOT / "experiments").as_posix() for p, _ in self.configs}
        for topic in ("abortion", "atheism", "climate", "feminist", "hillary"):
            for kind in ("binary-lora", "binary-qlora", "binary-prompt", "binary-sft", "binary-sft-defs",
                         "3class-lora", "binary-encoder", "binary-encoder-lora"):
                self.assertIn(f"stance/{topic}-{kind}.yaml", names)
        for lang in ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"):
            self.assertIn(f"sentiment/umsab-{lang}-lora.yaml", names)
            self.assertIn(f"sentiment/umsab-{lang}-encoder.yaml", names)
        self.assertIn("sentiment/sst2-lora.yaml", names)

    def test_sweeps_name_experiments_and_keys_that_exist(self):
        sweeps = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))
        self.assertTrue(sweeps)
        for path in sweeps:
            sweep = yaml.safe_load(path.read_text())["sweep"]
            for topic in sweep.get("topics") or [""]:
                base = ROOT / sweep["base"].replace("{topic}", topic)
                self.assertTrue(base.is_file(), f"{path.name}: {base} does not exist")
                # Every swept key, set to a value of its space, resolves in the experiment.
                overrides = []
                for key, spec in sweep["space"].items():
                    value = spec["choices"][0] if spec["type"] == "categorical" else spec["low"]
                    overrides.append(f"{key}={int(value) if spec['type'] == 'int' else value}")
                p = opine("config", "--config", base.relative_to(ROOT), *overrides)
                self.assertEqual(p.returncode, 0, f"{path.name} / {base.name}: {p.stderr}")

    def test_opine_config_resolves_each(self):
        for path, _ in self.configs:
            with self.subTest(config=path.relative_to(ROOT).as_posix()):
                p = opine("config", "--config", path.relative_to(ROOT))
                self.assertEqual(p.returncode, 0, p.stderr)
                resolved = yaml.safe_load(p.stdout)
                self.assertIn("train", resolved)

    def test_spec_task_and_run_dir(self):
        for path, doc in self.configs:
            rel = path.relative_to(ROOT).as_posix()
            with self.subTest(config=rel):
                data = doc.get("data") or {}
                spec = None
                if data.get("spec"):
                    spec_path = ROOT / data["spec"]
                    self.assertTrue(spec_path.is_file(), f"{rel}: data.spec {data['spec']} does not exist")
                    spec = yaml.safe_load(spec_path.read_text())
                    splits = spec.get("splits", {})
                    self.assertIn("train", splits)
                    root = DATA / spec.get("data_root", "")
                    if DATA.is_dir() and (DATA / "tweeteval").is_dir():
                        for split in splits.values():
                            for key in ("path", "labels"):
                                if key in split:
                                    file = root / split[key]
                                    self.assertTrue(file.is_file(), f"{rel}: no {file}")

                task = doc.get("task") or {}
                for key in ("system", "instruction"):
                    unknown = placeholders(task.get(key, "")) - PROMPT_PLACEHOLDERS
                    self.assertFalse(unknown, f"{rel}: task.{key} uses {unknown}")
                self.assertLessEqual(placeholders(task.get("answer", "{label}")), {"label"})
                labels = task.get("labels", [])
                # As TaskTemplate::validate: the default answer "{label}" needs label names, even
                # for a classification head (which never renders it).
                if "label" in placeholders(task.get("answer", "{label}")):
                    self.assertTrue(labels, f"{rel}: task.answer uses {{label}} but task.labels is empty")
                if labels and spec:
                    classes = spec.get("classes") or spec.get("label_names")
                    self.assertEqual(len(labels), len(classes), f"{rel}: task.labels vs the spec's classes")
                self.assertLessEqual(set(task.get("label_definitions", {})), set(labels))
                if "{definitions}" in task.get("instruction", ""):
                    self.assertTrue(task.get("label_definitions"), f"{rel}: {{definitions}} but no definitions")

                if "train" in doc:
                    self.assertEqual(doc["train"].get("run_dir"), f"runs/{path.stem}")
                header = "".join(line for line in path.read_text().splitlines(True) if line.startswith("#"))
                self.assertIn(f"--config {rel}", header)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
