"""Classification throughput against transformers, on the same model, tweets and tokens, in the same
run. Two strategies:

--strategy loglik (default): opine's log-likelihood strategy.
opine (bench_classify) scores each label's answer after the prompt with and without the shared
prompt prefix computed once; transformers scores the same token ids as users write it: every
(prompt, answer) pair as one padded row, batched, log-softmax, summed over the answer's tokens.
The peer also checks that it gets opine's log-probabilities (max difference printed). Prints
tweets/s of each and the ratios. Both use all cores (torch's default thread count).

--strategy head: a classification head (LlamaForSequenceClassification; by default a random one of
SmolLM2-135M's shape with the dataset's classes, bench/train_step.py's model). opine runs it
through the predictor of `opine predict` (texts sorted by length, batched); transformers as users
write it: batches of `--batch` texts in input order, padded to the longest; and, to show what the
ordering is worth, the same with the texts sorted by length. The peer checks it gets opine's
class probabilities.
    $(scripts/venv-path.sh)/bin/python bench/classify_throughput.py --model SmolLM2-135M-Instruct.Q4_1.gguf \
        [--config experiments/stance/abortion-binary-prompting.yaml] [--limit 128] [--shots 0 4]
    $(scripts/venv-path.sh)/bin/python bench/classify_throughput.py --strategy head [--model FOLDER] [--limit 256]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_hf(model):
    from transformers import AutoModelForCausalLM
    path = pathlib.Path(model)
    if path.is_file():  # GGUF: transformers dequantizes it to float32
        return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def hf_loglik(model, rows, batch):
    """Sum of answer-token log-probs for every (prompt, answer) pair, `batch` tweets per forward."""
    scores = []
    pad = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        seqs = [(r["prompt"] + a, len(r["prompt"]), len(a)) for r in chunk for a in r["answers"]]
        width = max(len(s) for s, _, _ in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (s, _, _) in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        per = []
        for i, (s, p, n) in enumerate(seqs):
            targets = torch.tensor(s[p:p + n])
            per.append(logp[i, p - 1:p - 1 + n].gather(-1, targets.unsqueeze(-1)).sum().item())
        k = len(chunk[0]["answers"])
        scores += [per[j * k:(j + 1) * k] for j in range(len(chunk))]
    return scores


def hf_head(model, rows, batch, pad, order):
    """Class probabilities of every row, `batch` rows per forward, in `order`."""
    probs = [None] * len(rows)
    for start in range(0, len(rows), batch):
        chunk = order[start:start + batch]
        width = max(len(rows[i]["ids"]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, i in enumerate(chunk):
            ids[j, :len(rows[i]["ids"])] = torch.tensor(rows[i]["ids"])
            mask[j, :len(rows[i]["ids"])] = 1
        with torch.no_grad():
            p = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        for j, i in enumerate(chunk):
            probs[i] = p[j].tolist()
    return probs


def head(args):
    from transformers import AutoModelForSequenceClassification
    sys.path.insert(0, str(ROOT / "bench"))
    import train_step
    config = args.config.replace("prompting", "lora") if args.config.endswith("-prompting.yaml") else args.config
    model_dir = args.model
    if not model_dir:
        model_dir = pathlib.Path(args.cache) / "smollm2-135m-classification-2"
        train_step.make_model("smollm2-135m", "classification", model_dir, num_labels=2)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    pad = model.config.pad_token_id
    print(f"torch threads {torch.get_num_threads()}, head of {model_dir}, {args.limit} tweets of {args.split}, "
          f"batch {args.batch}")
    with tempfile.NamedTemporaryFile(suffix=".json") as dump:
        p = subprocess.run([f"{args.build}/bin/bench_classify", "--strategy", "head", "--config", config, "--model",
                            str(model_dir), "--tokenizer", str(train_step.smollm2_gguf()), "--split", args.split,
                            "--limit", str(args.limit), "--batch", str(args.batch), "--repeats",
                            str(args.repeats), "--dump", dump.name], capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            sys.exit(f"bench_classify failed:\n{p.stderr}")
        ours = json.loads(p.stdout.strip().splitlines()[-1])
        rows = json.loads(pathlib.Path(dump.name).read_text())
    results = {}
    for name, order in [("input order", list(range(len(rows)))),
                        ("sorted by length", sorted(range(len(rows)), key=lambda i: len(rows[i]["ids"])))]:
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            probs = hf_head(model, rows, args.batch, pad, order)
            best = min(best, time.perf_counter() - t0)
        diff = max(abs(a - b) for r, q in zip(rows, probs) for a, b in zip(r["probabilities"], q))
        results[name] = (len(rows) / best, diff)
    print(f"{'opine':>8} {'HF as written':>14} {'HF sorted':>10} {'vs written':>11} {'vs sorted':>10} {'max |dp|':>9}")
    o = ours["head_tweets_per_s"]
    (hw, dw), (hs, ds) = results["input order"], results["sorted by length"]
    print(f"{o:>8.1f} {hw:>14.1f} {hs:>10.1f} {o / hw:>10.2f}x {o / hs:>9.2f}x {max(dw, ds):>9.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="loglik: the model (required); head: a folder with a classification head")
    ap.add_argument("--strategy", default="loglik", choices=["loglik", "head"])
    ap.add_argument("--cache", default=str(pathlib.Path.home() / ".cache/opine/bench"))
    ap.add_argument("--config", default=str(ROOT / "experiments/stance/abortion-binary-prompting.yaml"))
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shots", type=int, nargs="+", default=[0, 4])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.strategy == "head":
        return head(args)
    if not args.model:
        sys.exit("--model is required for the loglik strategy")
    model = load_hf(args.model)
    print(f"torch threads {torch.get_num_threads()}, model {args.model}, {args.limit} tweets of {args.split}, "
          f"batch {args.batch}")
    print(f"{'shots':>5} {'opine cached':>13} {'opine uncached':>15} {'transformers':>13} {'cached/HF':>10} "
          f"{'uncached/HF':>12} {'max |dlogp|':>12}")
    for shots in args.shots:
        with tempfile.NamedTemporaryFile(suffix=".json") as dump:
            p = subprocess.run([f"{args.build}/bin/bench_classify", "--config", args.config, "--model", args.model,
                                "--split", args.split, "--limit", str(args.limit), "--shots", str(shots),
                                "--batch", str(args.batch), "--repeats", str(args.repeats), "--dump", dump.name],
                               capture_output=True, text=True, cwd=ROOT)
            if p.returncode != 0:
                sys.exit(f"bench_classify failed:\n{p.stderr}")
            ours = json.loads(p.stdout.strip().splitlines()[-1])
            rows = json.loads(pathlib.Path(dump.name).read_text())
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            scores = hf_loglik(model, rows, args.batch)
            best = min(best, time.perf_counter() - t0)
        hf = len(rows) / best
        diff = max(abs(a - b) for r, s in zip(rows, scores) for a, b in zip(r["logprobs"], s))
        cached, uncached = ours["prefix_cache_tweets_per_s"], ours["no_cache_tweets_per_s"]
        print(f"{shots:>5} {cached:>13.1f} {uncached:>15.1f} {hf:>13.1f} {cached / hf:>10.2f} {uncached / hf:>12.2f} "
              f"{diff:>12.2e}")


if __name__ == "__main__":
    main()
