"""PEFT references for opine's peft/: tiny Llama/Qwen2 models with LoRA, rsLoRA, DoRA and prompt
tuning applied by PEFT itself, their adapter folders (save_pretrained), and what PEFT computes:
outputs, the loss and the gradient of every trainable tensor under PEFT's saved names.

B (zero after PEFT's init) is set to seeded normal values after get_peft_model, so every
gradient is non-trivial; DoRA's magnitude is then no longer the row norm, so its scale shows too.

Run as a script, `peft_reference.py check DIR` loads the opine-written adapter DIR/adapter with
PeftModel.from_pretrained over DIR/base and compares PEFT's outputs with DIR/expected.safetensors
(written by opine); it exits non-zero on a mismatch.
"""
import json
import pathlib
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tiny_models import CLASS_LABELS, REGRESSION_TARGETS, SEQUENCES, randomize, right_padded, small  # noqa: E402

# Tolerance of the round-trip check: float32 outputs of the same weights, computed by two
# implementations (different accumulation orders), relative to the output's largest magnitude.
CHECK_RTOL = 1e-5


def base_models():
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, Qwen2Config
    from transformers import Qwen2ForSequenceClassification
    return {
        "causal": (LlamaForCausalLM, LlamaConfig(**small(tie_word_embeddings=False))),
        "classify": (LlamaForSequenceClassification, LlamaConfig(**small(num_labels=3, pad_token_id=0))),
        # Qwen2 has q/k/v biases, so bias="all" and DoRA's bias handling show.
        "regress": (Qwen2ForSequenceClassification, Qwen2Config(**small(
            num_labels=1, problem_type="regression", pad_token_id=0, num_attention_heads=8))),
    }


def cases():
    from peft import LoraConfig, PromptTuningConfig
    return {
        "lora_causal": ("causal", LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             init_lora_weights="gaussian",
                                             target_modules=["q_proj", "v_proj", "o_proj", "down_proj"])),
        "rslora_classify": ("classify", LoraConfig(r=8, lora_alpha=16, use_rslora=True, task_type="SEQ_CLS",
                                                   target_modules="all-linear")),
        "dora_causal": ("causal", LoraConfig(r=4, lora_alpha=6, use_dora=True, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "up_proj"])),
        # target_modules as one string is a regular expression in PEFT.
        "dora_regress": ("regress", LoraConfig(r=2, lora_alpha=4, use_dora=True, bias="all", task_type="SEQ_CLS",
                                               target_modules=r".*\.(q_proj|gate_proj)")),
        "prompt_causal": ("causal", PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5)),
        "prompt_classify": ("classify", PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)),
        "prompt_regress": ("regress", PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=3)),
    }


def saved_name(name):
    """A trainable parameter's name as PEFT's adapter file spells it (adapter name removed)."""
    if name.startswith("prompt_encoder."):
        return "prompt_embeddings"
    name = name.replace(".lora_magnitude_vector.default.weight", ".lora_magnitude_vector")
    name = name.replace(".modules_to_save.default.", ".")
    return name.replace(".default.", ".")


def trainable_line(model):
    t, a = model.get_nb_trainable_parameters()
    return f"trainable params: {t:,d} || all params: {a:,d} || trainable%: {100 * t / a:.4f}"


def inputs(base, prompt):
    """input_ids, attention_mask (or None) and labels for a base model's loss."""
    if prompt and base != "causal":
        # transformers pools the last position when given embeddings: no padding here.
        n = min(map(len, SEQUENCES))
        ids, mask = torch.tensor([s[:n] for s in SEQUENCES]), None
    else:
        ids, mask, _ = right_padded(SEQUENCES)
    if base == "causal":
        labels = ids.masked_fill(mask == 0, -100)
    elif base == "classify":
        labels = torch.tensor(CLASS_LABELS)
    else:
        labels = torch.tensor(REGRESSION_TARGETS)
    return ids, mask, labels


def generate(out: pathlib.Path):
    from peft import LoraConfig, get_peft_model
    out.mkdir(parents=True, exist_ok=True)
    bases = base_models()
    for seed, (name, (cls, config)) in enumerate(bases.items()):
        torch.manual_seed(100 + seed)
        model = cls(config).eval()
        randomize(model, 100 + seed)
        model.save_pretrained(out / "base" / name)

    for case_seed, (case, (base, peft_config)) in enumerate(cases().items()):
        cls, _ = bases[base]
        model = cls.from_pretrained(out / "base" / base).eval()
        torch.manual_seed(1000 + case_seed)  # opine draws A from the same seed
        pm = get_peft_model(model, peft_config).eval()
        folder = out / case
        folder.mkdir(parents=True, exist_ok=True)
        prompt = peft_config.is_prompt_learning
        if not prompt:
            init = {saved_name(n): p.detach().clone() for n, p in pm.named_parameters() if ".lora_A." in n}
            save_file(init, folder / "init_A.safetensors")
            g = torch.Generator().manual_seed(2000 + case_seed)
            with torch.no_grad():
                for n, p in pm.named_parameters():
                    if ".lora_B." in n:
                        p.copy_(0.1 * torch.randn(p.shape, generator=g))
        pm.save_pretrained(folder / "adapter")
        line = trainable_line(pm)

        ids, mask, labels = inputs(base, prompt)
        result = pm(input_ids=ids, attention_mask=mask, labels=labels)
        result.loss.backward()
        tensors = {"input_ids": ids, "labels": labels, "output": result.logits.detach().contiguous(),
                   "loss": result.loss.detach().reshape(1)}
        if mask is not None:
            tensors["attention_mask"] = mask
        for n, p in pm.named_parameters():
            if p.requires_grad:
                tensors["grad." + saved_name(n)] = p.grad.detach().clone().contiguous()
        # Merged into the base (PEFT's merge_and_unload) for the same inputs.
        if not prompt:
            with torch.no_grad():
                merged = pm.merge_and_unload()
                tensors["merged_output"] = merged(input_ids=ids, attention_mask=mask).logits.contiguous()
        save_file(tensors, folder / "reference.safetensors")
        info = {"case": case, "base": base, "kind": "prompt" if prompt else "lora", "seed": 1000 + case_seed,
                "trainable": line, "loss": result.loss.item()}
        (folder / "reference.json").write_text(json.dumps(info, indent=1))


def check(folder: pathlib.Path) -> int:
    """PEFT loads the adapter opine wrote and must compute what opine computed."""
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification
    config = AutoConfig.from_pretrained(folder / "base")
    auto = AutoModelForCausalLM if config.architectures[0].endswith("CausalLM") else AutoModelForSequenceClassification
    model = PeftModel.from_pretrained(auto.from_pretrained(folder / "base"), folder / "adapter").eval()
    expected = load_file(folder / "expected.safetensors")
    with torch.no_grad():
        got = model(input_ids=expected["input_ids"], attention_mask=expected.get("attention_mask")).logits
    want = expected["output"]
    err = (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30)
    print(f"{folder.name}: PEFT vs opine max relative error {err:.3g} (tolerance {CHECK_RTOL:g})")
    return 0 if got.shape == want.shape and err <= CHECK_RTOL else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(pathlib.Path(sys.argv[2])))
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    generate(ap.parse_args().out)
