"""Log-likelihood classification throughput: opine's loglik strategy against transformers, on the
same model, tweets and tokens, in the same run.

opine (bench_classify) scores each label's answer after the prompt with and without the shared
prompt prefix computed once; transformers scores the same token ids as users write it: every
(prompt, answer) pair as one padded row, batched, log-softmax, summed over the answer's tokens.
The peer also checks that it gets opine's log-probabilities (max difference printed). Prints
tweets/s of each and the ratios. Both use all cores (torch's default thread count).
    $(scripts/venv-path.sh)/bin/python bench/classify_throughput.py --model SmolLM2-135M-Instruct.Q4_1.gguf \
        [--config experiments/stance/abortion-binary-prompting.yaml] [--limit 128] [--shots 0 4]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--config", default=str(ROOT / "experiments/stance/abortion-binary-prompting.yaml"))
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shots", type=int, nargs="+", default=[0, 4])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
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
