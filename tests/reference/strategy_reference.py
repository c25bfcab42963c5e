"""Answers of the training-free strategies on the tiny trainer model, computed with transformers.

For the first val examples of tests/reference/trainer_fixture.py: the prompt as a plain-text task
template renders it (system, shots as user/assistant turns, the query, joined by blank lines, then a
newline before the answer), tokenized by HF tokenizers; then
  - loglik: the summed log-probability of each label's answer tokens ("against"/"favor" + EOS);
  - generate: greedy decoding (model.generate, no sampling) up to 8 tokens or EOS;
  - 2-shot "similar": the two train examples nearest by scikit-learn's TF-IDF cosine (smoothed idf,
    l2 norm, lower-cased word tokens), the nearest placed last.
tests/launch/test_eval.py compares `opine eval` with these.
"""
import csv
import json
import pathlib

import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

SYSTEM = "Decide the stance of the tweet."
INSTRUCTION = "Tweet: {text}\nStance?"
LABELS = ["against", "favor"]
COUNT = 10
MAX_NEW = 8


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def generate(out: pathlib.Path):
    fixture = out.parent / "trainer"
    model = LlamaForCausalLM.from_pretrained(fixture / "model", dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(fixture / "model" / "tokenizer.json"))
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    val = read(fixture / "data" / "val.csv")[:COUNT]
    train = read(fixture / "data" / "train.csv")

    def prompt(text, shots):
        turns = [SYSTEM]
        for s in shots:
            turns += [INSTRUCTION.format(text=s["text"]), s["label"]]
        turns.append(INSTRUCTION.format(text=text))
        return [bos] + tok.encode("\n\n".join(turns) + "\n", add_special_tokens=False).ids

    def label_logprobs(ids):
        scores = []
        for label in LABELS:
            answer = tok.encode(label, add_special_tokens=False).ids + [eos]
            full = torch.tensor([ids + answer])
            with torch.no_grad():
                logp = torch.log_softmax(model(full).logits[0].double(), -1)
            scores.append(sum(logp[len(ids) - 1 + i, t].item() for i, t in enumerate(answer)))
        return scores

    vectorizer = TfidfVectorizer(lowercase=True, token_pattern=r"[0-9a-z#@_]+", norm="l2", smooth_idf=True)
    train_matrix = vectorizer.fit_transform([r["text"] for r in train])

    def similar(text, k=2):
        sims = (train_matrix @ vectorizer.transform([text]).T).toarray().ravel()
        order = sorted(range(len(train)), key=lambda i: -sims[i])  # stable: ties keep train order
        return [train[i] for i in reversed(order[:k])]

    examples = []
    for r in val:
        ids = prompt(r["text"], [])
        with torch.no_grad():
            gen = model.generate(torch.tensor([ids]), max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=eos,
                                 pad_token_id=eos)[0, len(ids):].tolist()
        if gen and gen[-1] == eos:
            gen = gen[:-1]
        shots = similar(r["text"])
        examples.append({
            "text": r["text"],
            "loglik": label_logprobs(ids),
            "loglik_2shot_similar": label_logprobs(prompt(r["text"], shots)),
            "shots": [s["text"] for s in shots],
            "generated": tok.decode(gen, skip_special_tokens=True),
        })
    (out / "expected.json").write_text(json.dumps({
        "system": SYSTEM, "instruction": INSTRUCTION, "labels": LABELS, "count": COUNT, "max_new_tokens": MAX_NEW,
        "examples": examples}, indent=1))
