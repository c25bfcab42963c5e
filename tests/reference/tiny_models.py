"""Tiny random Llama-family models written with transformers, and their outputs as references.

Each model is saved with save_pretrained (config.json + safetensors) beside a JSON file holding
what transformers computes for fixed inputs: per-token log-probabilities (float32 and bfloat16),
classification/regression logits, and a greedy continuation. The C++ tests load the same folders.
"""
import json
import pathlib

import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen2ForSequenceClassification)

VOCAB = 96
# Sequences of different lengths: the C++ side batches them with padding and must match each
# sequence computed alone here.
SEQUENCES = [
    [1, 17, 42, 5, 88, 23, 61, 9, 14, 77, 30, 2],
    [1, 64, 3, 91, 12, 45, 7],
    [1, 33, 8, 70, 55, 19, 26, 84, 40, 11],
]
PROMPT = [1, 20, 31, 47, 52]
CLASS_LABELS = [0, 2, 1]
REGRESSION_TARGETS = [0.5, -1.0, 2.0]


def right_padded(seqs, pad=0):
    """The sequences as one right-padded batch, its mask, and LM labels with -100 at padding."""
    n = max(map(len, seqs))
    ids = torch.tensor([s + [pad] * (n - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels
NEW_TOKENS = 8


def small(**kw):
    base = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
    base.update(kw)
    return base


def models():
    """name -> (model class, config): GQA and MHA, tied and untied, biases, rope scalings, heads."""
    return {
        "llama_gqa_untied": (LlamaForCausalLM, LlamaConfig(**small(
            rope_theta=500000.0, tie_word_embeddings=False,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16}))),
        "llama_mha_tied_bias": (LlamaForCausalLM, LlamaConfig(**small(
            num_key_value_heads=4, tie_word_embeddings=True, attention_bias=True, mlp_bias=True,
            rope_scaling={"rope_type": "linear", "factor": 2.0}))),
        "qwen2_gqa_tied": (Qwen2ForCausalLM, Qwen2Config(**small(
            num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True,
            rope_theta=1000000.0))),
        "mistral_window": (MistralForCausalLM, MistralConfig(**small(
            sliding_window=4, tie_word_embeddings=False))),
        "llama_classify": (LlamaForSequenceClassification, LlamaConfig(**small(
            num_labels=3, pad_token_id=0))),
        "qwen2_regress": (Qwen2ForSequenceClassification, Qwen2Config(**small(
            num_labels=1, problem_type="regression", pad_token_id=0))),
    }


def randomize(model, seed):
    """Weights far from the defaults (norms not 1, biases not 0) so every term shows in outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def logprobs(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits.float()
    lp = torch.log_softmax(logits[0, :-1], -1)
    return lp.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1).tolist()


def generate(out_dir: pathlib.Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    for seed, (name, (cls, config)) in enumerate(models().items()):
        torch.manual_seed(seed)
        model = cls(config).eval()
        randomize(model, seed)
        folder = out_dir / name
        # One model is sharded, so the index.json path is exercised too.
        model.save_pretrained(folder, max_shard_size="40KB" if name == "llama_gqa_untied" else "1GB")
        ref = {"transformers": transformers.__version__, "torch": torch.__version__,
               "sequences": SEQUENCES}
        bf16 = cls(config).eval()
        bf16.load_state_dict(model.state_dict())
        bf16 = bf16.to(torch.bfloat16)
        if cls.__name__.endswith("ForCausalLM"):
            ref["logprobs_f32"] = [logprobs(model, s) for s in SEQUENCES]
            ref["logprobs_bf16"] = [logprobs(bf16, s) for s in SEQUENCES]
            with torch.no_grad():
                out = model.generate(torch.tensor([PROMPT]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                     eos_token_id=None, pad_token_id=0)
            ref["greedy"] = {"prompt": PROMPT, "new_tokens": out[0, len(PROMPT):].tolist()}
            ids, mask, labels = right_padded(SEQUENCES)
            with torch.no_grad():
                ref["loss_f32"] = model(ids, attention_mask=mask, labels=labels).loss.item()
        else:
            with torch.no_grad():
                ref["logits_f32"] = [model(torch.tensor([s])).logits[0].tolist() for s in SEQUENCES]
                ref["logits_bf16"] = [bf16(torch.tensor([s])).logits[0].float().tolist() for s in SEQUENCES]
                ids, mask, _ = right_padded(SEQUENCES)
                regression = config.num_labels == 1
                labels = torch.tensor(REGRESSION_TARGETS if regression else CLASS_LABELS)
                ref["labels"] = labels.tolist()
                ref["loss_f32"] = model(ids, attention_mask=mask, labels=labels).loss.item()
        (folder / "reference.json").write_text(json.dumps(ref))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    generate(ap.parse_args().out)
