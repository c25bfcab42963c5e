"""Every text in the shipped data that tokenizer parity is checked on, plus tricky strings.

TweetEval stance (5 topics, train + val), TweetEval sentiment (val + test), UMSAB sentiment in
eight languages (train + val) and SST-2 (train_full + dev). Files are read as UTF-8, one text a
line, exactly as the C++ readers will read them.
"""
import pathlib

TRICKY = [
    "", " ", "  two  spaces ", "\ttab\tand\nnewline\n", "UPPER lower MiXeD 123 4567 3.14",
    "@user http://t.co/abc #SemST #ClimateChange!!!", "emoji 😀🤣👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "日本語のツイート、漢字とカタカナ。", "مرحبا بالعالم، هذه تغريدة", "हिन्दी में ट्वीट", "naïve café résumé — “quotes” …",
    "combining: e\u0301 a\u0308 o\u0302", "zero\u200bwidth\u200djoiner", "don't won't I'm we'll they're",
    "<s> not special in the middle </s>", "<|im_start|>user\nhi<|im_end|>", "1234567890 000 42,000.50",
    "a" * 300,
]


def texts(data_root: pathlib.Path) -> list[str]:
    out = []

    def lines(path: pathlib.Path):
        if path.exists():
            out.extend(path.read_text(encoding="utf-8").splitlines())

    tweeteval = data_root / "tweeteval/datasets"
    for topic in ["abortion", "atheism", "climate", "feminist", "hillary"]:
        for split in ["train", "val"]:
            lines(tweeteval / "stance" / topic / f"{split}_text.txt")
    for split in ["val", "test"]:
        lines(tweeteval / "sentiment" / f"{split}_text.txt")
    umsab = data_root / "xlm-t-umsab-sentiment/data/sentiment"
    for lang in ["arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"]:
        for split in ["train", "val"]:
            lines(umsab / lang / f"{split}_text.txt")
    sst2 = data_root / "sst2-glue/glue_data/SST-2"
    for split in ["train_full", "dev"]:
        path = sst2 / f"{split}.tsv"
        if path.exists():
            rows = path.read_text(encoding="utf-8").splitlines()[1:]  # header: sentence<TAB>label
            out.extend(row.rsplit("\t", 1)[0] for row in rows)
    return out + TRICKY
