"""SentencePiece ids, by the sentencepiece library itself, for every corpus text, with Llama-2's
real tokenizer.model. BOS is added as Llama's tokenizer does (add_bos_token, no EOS)."""
import json
import pathlib

import sentencepiece as spm

from corpus import texts


def generate(out_dir: pathlib.Path, data_root: pathlib.Path):
    model = data_root / "tokenizers/llama2-spm-llama2.c/tokenizer.model"
    if not model.exists():
        return
    sp = spm.SentencePieceProcessor(model_file=str(model))
    corpus = texts(data_root)
    ids = [[sp.bos_id()] + sp.encode(t) for t in corpus]
    decoded = [sp.decode(i[1:]) for i in ids]
    (out_dir / "llama2_spm.json").write_text(json.dumps(
        {"model": str(model), "texts": corpus, "ids": ids, "decoded": decoded}, ensure_ascii=False))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    generate(a.out, a.data_root)
