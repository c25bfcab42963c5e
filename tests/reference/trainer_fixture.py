"""A tiny Llama model, its tokenizer and a small learnable stance dataset for the trainer's tests.

Written with transformers and tokenizers (the formats users bring): a Hugging Face folder
(config.json, model.safetensors, tokenizer.json, tokenizer_config.json) and CSV splits whose
label follows from cue words, so a few dozen steps of LoRA learn it.
"""
import csv
import json
import pathlib
import random

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import LlamaConfig, LlamaForCausalLM

FAVOR = ["support", "love", "right", "yes", "great", "protect", "choice", "freedom"]
AGAINST = ["ban", "hate", "wrong", "no", "stop", "shame", "illegal", "never"]
FILLER = ["the", "people", "today", "we", "should", "this", "law", "vote", "about", "our", "state",
          "they", "it", "is", "a", "new", "bill", "court", "think", "i", "my", "all", "for", "and"]


def sentence(rng, label):
    cues = FAVOR if label == "favor" else AGAINST
    words = rng.sample(FILLER, rng.randint(4, 9)) + rng.sample(cues, rng.randint(1, 2))
    rng.shuffle(words)
    return " ".join(words) + rng.choice(["", " #vote", " !", " ..."])


def write_split(path, rng, n):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "score"])
        for i in range(n):
            label = "favor" if rng.random() < 0.4 else "against"  # imbalanced, as stance data is
            text = sentence(rng, label)
            score = sum(t in FAVOR for t in text.split()) - sum(t in AGAINST for t in text.split())
            w.writerow([text, label, score])


def generate(out: pathlib.Path):
    rng = random.Random(7)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_split(data / "train.csv", rng, 192)
    write_split(data / "val.csv", rng, 64)

    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    corpus = [sentence(rng, rng.choice(["favor", "against"])) for _ in range(500)]
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus, vocab_size=384, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"],
                            show_progress=False)
    tok.save(str(model_dir / "tokenizer.json"))
    (model_dir / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}))
    vocab = tok.get_vocab_size()

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=1,
                         pad_token_id=2)
    model = LlamaForCausalLM(config)
    model.save_pretrained(model_dir, safe_serialization=True)
    (out / "info.json").write_text(json.dumps({"vocab": vocab}))
