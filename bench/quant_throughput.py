"""4-bit throughput, opine against bitsandbytes, on the same shapes and device in one run.

Runs build/bin/bench_quant --json (opine) and times bitsandbytes on the same weights' shapes:
dequantize_4bit (nf4, block 64, double quant) to f16/bf16/f32, and a Linear4bit layer in eval mode
with compute dtype bf16/f32 at batch 1, 8 and 64 (what transformers runs for inference; on CPUs
with AVX512-BF16 bnb repacks the weight for its bf16 kernel there). Mean time over >= min-seconds,
after a warm-up call. Prints opine / bnb ratios (dequant: GB/s ratio, > 1 is faster; matmul: time
ratio, < 1 is faster).
    $(scripts/venv-path.sh)/bin/python bench/quant_throughput.py [--build build] [--device cpu|cuda]
"""
import argparse
import json
import pathlib
import subprocess
import time

import torch

import bitsandbytes as bnb
import bitsandbytes.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent


def time_it(fn, device, min_seconds):
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    fn()
    sync()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
        sync()
    return (time.perf_counter() - start) / calls


def bnb_numbers(shapes, device, min_seconds):
    out = {"dequant": {}, "matmul": {}}
    names = {torch.float16: "Half", torch.bfloat16: "BFloat16", torch.float32: "Float"}
    torch.manual_seed(0)
    with torch.no_grad():
        for rows, cols in shapes:
            shape = f"{rows}x{cols}"
            w32 = torch.randn(rows, cols) * 0.02
            for dt in (torch.float16, torch.bfloat16, torch.float32):
                q, state = F.quantize_4bit(w32.to(dt).to(device), blocksize=64, compress_statistics=True,
                                           quant_type="nf4")
                s = time_it(lambda: F.dequantize_4bit(q, state), device, min_seconds)
                out["dequant"].setdefault(shape, {})[names[dt]] = {"ms": s * 1e3,
                                                                   "gb_per_s": rows * cols * dt.itemsize / s / 1e9}
            for dt in (torch.bfloat16, torch.float32):
                layer = bnb.nn.Linear4bit(cols, rows, bias=False, compute_dtype=dt, compress_statistics=True,
                                          quant_type="nf4")
                layer.weight = bnb.nn.Params4bit(w32.clone(), requires_grad=False, compress_statistics=True,
                                                 quant_type="nf4")
                layer = layer.to(device).eval()
                for batch in (1, 8, 64):
                    x = torch.randn(batch, cols, dtype=dt, device=device)
                    s = time_it(lambda: layer(x), device, min_seconds)
                    out["matmul"].setdefault(shape, {}).setdefault(names[dt], {})[str(batch)] = {"nf4_ms": s * 1e3}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--min-seconds", type=float, default=0.3)
    args = ap.parse_args()
    ours = json.loads(subprocess.run([str(pathlib.Path(args.build) / "bin/bench_quant"), "--json", "--device",
                                      args.device, "--min-seconds", str(args.min_seconds)],
                                     check=True, capture_output=True, text=True).stdout)
    shapes = [tuple(map(int, s.split("x"))) for s in ours["dequant"]]
    theirs = bnb_numbers(shapes, args.device, args.min_seconds)
    print(f"device {args.device}, {ours['threads']} threads (torch: {torch.get_num_threads()}); "
          f"bitsandbytes {bnb.__version__}; nf4, block 64, double quant")
    print("\ndequantization, GB/s of output: opine / bnb (ratio > 1: opine faster)")
    print(f"{'weight':<12} {'dtype':<9} {'opine':>8} {'bnb':>8} {'ratio':>7}")
    for shape, per in ours["dequant"].items():
        for dt, r in per.items():
            b = theirs["dequant"][shape][dt]["gb_per_s"]
            print(f"{shape:<12} {dt:<9} {r['gb_per_s']:8.2f} {b:8.2f} {r['gb_per_s'] / b:7.2f}")
    print("\n4-bit matmul, ms: opine, bnb Linear4bit, opine's dense at::linear (ratio < 1: opine faster)")
    print(f"{'weight':<12} {'dtype':<9} {'batch':>5} {'opine':>9} {'bnb':>9} {'dense':>9} {'opine/bnb':>9}")
    for shape, per_dt in ours["matmul"].items():
        for dt, per_batch in per_dt.items():
            for batch, r in per_batch.items():
                b = theirs["matmul"][shape][dt][batch]["nf4_ms"]
                print(f"{shape:<12} {dt:<9} {batch:>5} {r['nf4_ms']:9.3f} {b:9.3f} {r['dense_ms']:9.3f} "
                      f"{r['nf4_ms'] / b:9.2f}")


if __name__ == "__main__":
    main()
