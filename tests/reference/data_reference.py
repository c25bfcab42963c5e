"""Reference values for data/ (tests/data/test_dataset.cpp), from Python's own csv, json and codecs.

- counts.json: for every dataset spec in experiments/datasets/*.yaml, the rows kept per split and
  class, the rows dropped by label_map and those left out as unusable, computed from the files
  with Python's csv module (quoting as the spec says), its UTF-8 / cp1252 codecs and the spec's
  label rules (label_names, label_map, classes, filter) -- an independent reading of the same spec.
- normalize.json: every TweetEval stance and UMSAB line with the cardiffnlp models' published
  preprocessing (html.unescape first, as the Twitter API escapes & < >), and with white space
  collapsed by str.split().
"""
import csv
import html
import json
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cardiff_preprocess(text):
    # As published on the cardiffnlp/twitter-roberta-base-* model cards.
    new_text = []
    for t in text.split(" "):
        t = "@user" if t.startswith("@") and len(t) > 1 else t
        t = "http" if t.startswith("http") else t
        new_text.append(t)
    return " ".join(new_text)


def decode_lines(path, encoding):
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    parts = raw.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    lines = []
    for p in parts:
        if p.endswith(b"\r"):
            p = p[:-1]
        if encoding == "utf-8":
            lines.append(p.decode("utf-8"))
        elif encoding == "utf-8-or-windows-1252":
            try:
                lines.append(p.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(p.decode("cp1252", errors="strict"))
        else:
            raise ValueError(encoding)
    return lines


def split_rows(spec, files, root):
    fmt = spec.get("format", "auto")
    encoding = spec.get("encoding", "utf-8")
    if fmt == "tweeteval":
        texts = decode_lines(root / files["path"], encoding)
        labels = decode_lines(root / files["labels"], encoding)
        assert len(texts) == len(labels)
        return [(t, l.strip(), spec.get("topic", "")) for t, l in zip(texts, labels)]
    delimiter = "," if fmt == "csv" else "\t"
    quoting = spec.get("quoting", fmt == "csv")
    text = "\n".join(decode_lines(root / files["path"], encoding))
    reader = csv.reader(text.split("\n"), delimiter=delimiter,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    rows = [r for r in reader if r]
    header, body = rows[0], rows[1:]
    ti, li = header.index(spec.get("text_column", "text")), header.index(spec.get("label_column", "label"))
    topic_col = spec.get("topic_column")
    filters = [(header.index(c), v) for c, v in (spec.get("filter") or {}).items()]
    out = []
    for r in body:
        if all(r[c] == v for c, v in filters):
            out.append((r[ti], r[li].strip(), r[header.index(topic_col)] if topic_col else spec.get("topic", "")))
    return out


def counts_for(spec, root):
    names = spec.get("label_names") or []
    label_map = spec.get("label_map") or {}
    classes = spec.get("classes") or names
    result = {}
    for split, files in spec["splits"].items():
        kept = {c: 0 for c in classes}
        dropped = bad = 0
        for text, label, _ in split_rows(spec, files, root):
            if not text.strip():
                bad += 1
                continue
            name = names[int(label)] if names and label.isdigit() and int(label) < len(names) else label
            if label_map:
                if name not in label_map:
                    bad += 1
                    continue
                if label_map[name] == "drop":
                    dropped += 1
                    continue
                name = label_map[name]
            if name not in kept:
                bad += 1
                continue
            kept[name] += 1
        result[split] = {"classes": kept, "dropped": dropped, "bad": bad}
    fraction = (spec.get("validation") or {}).get("fraction", 0)
    if fraction:
        train = result["train"]["classes"]
        val = {c: int(n * fraction + 0.5) for c, n in train.items()}
        result["carved"] = {"train": {c: train[c] - val[c] for c in train}, "val": val}
    return result


def generate(out_dir: pathlib.Path, data_root: pathlib.Path):
    if not (data_root / "tweeteval").exists():
        return
    counts = {}
    for path in sorted((ROOT / "experiments/datasets").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        counts[path.stem] = counts_for(spec, data_root)
    (out_dir / "counts.json").write_text(json.dumps(counts, indent=1, ensure_ascii=False))

    files = [data_root / f"tweeteval/datasets/stance/{t}/{s}_text.txt"
             for t in ["abortion", "atheism", "climate", "feminist", "hillary"] for s in ["train", "val"]]
    files += [data_root / f"xlm-t-umsab-sentiment/data/sentiment/{l}/{s}_text.txt"
              for l in ["arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"]
              for s in ["train", "val"]]
    rows = []
    for f in files:
        for line in decode_lines(f, "utf-8"):
            plain = cardiff_preprocess(html.unescape(line))
            rows.append({"file": str(f.relative_to(data_root)), "text": line, "cardiff": plain,
                         "collapsed": " ".join(plain.split())})
    (out_dir / "normalize.json").write_text(json.dumps(rows, ensure_ascii=False))
