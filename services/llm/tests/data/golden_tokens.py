#!/usr/bin/env python3
"""Golden token ids from llama.cpp for `services/llm/tests/tokenizer.rs`.

Tokenizes a varied sample of texts with llama.cpp (through llama-cpp-python,
vocabulary only) for each model, with and without BOS and with and without
parsing special tokens, and writes `golden_tokens.json` next to this script:
per model and text, `ids.plain` (no BOS, special tokens not parsed) and,
where they differ from it, `ids.parse`, `ids.bos_plain` and `ids.bos_parse`.

    python golden_tokens.py [MODELS_DIR]

MODELS_DIR defaults to $ATHENA_CACHE_DIR/models (~/.cache/athena/models),
where the model store puts each model in a directory of its name.
"""

import json
import os
import sys
from pathlib import Path

import llama_cpp

MODELS = [
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "gemma-3-270m",
]

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. Meanwhile, in a small village "
    "by the sea, an old fisherman repaired his nets and told stories of storms "
    "he had survived. Children gathered around him every evening; they laughed, "
    "asked questions, and sometimes didn't believe a word he said. \"It's true!\" "
    "he'd insist, pointing at the scar on his arm. Nobody knew for sure."
)

# Plain texts: no special-token text in them, so decoding their ids must
# give them back.
PLAIN = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "  two leading spaces",
    "multiple   spaces   inside    here",
    "   ",
    " ",
    "a",
    "",
    "line one\nline two\n\nline four",
    "\n",
    "\n\n\n",
    "ends with newline\n",
    "tabs\tand\t\ttabs",
    "\r\nwindows line\r\nsecond\r\n",
    "1234567 and 3.14159 and 1,000,000 and 42",
    "def foo(x):\n    if x > 0:\n        return x * 2\n    return None\n",
    "fn main() {\n\tprintln!(\"{}\", 1 + 2);\n}\n",
    "    indented with four spaces\n\t\tdouble tab",
    "don't can't I'LL we've SHE'S they'd You'Re it's",
    "Wait... what?!?! ---> (yes) [no] {maybe} @user #hash $100 50% a+b=c ~~~",
    "https://example.com/path?query=1&b=two#frag and user@example.org",
    "Emoji: 😀🎉👍🏽 ❤️ 🇫🇷",
    "Café naïve résumé façade Ångström über straße",
    "Привет, мир! Как дела?",
    "你好，世界！今天天气很好。",
    "こんにちは世界、カタカナとひらがな。",
    "مرحبا بالعالم",
    "हिन्दी में लिखा है",
    "Mixed: abc123def 3rd 4th 2024-01-15T10:30:00Z",
    "UPPER lower MiXeD CamelCaseWord snake_case_word kebab-case-word",
    "\u00a0nbsp\u2003emspace\u3000ideographic",
    "zero\u200bwidth",
    "bell\x07and\x1bescape",
    "a" * 40,
    ENGLISH,
]

# Texts with special tokens of one model or another (plain text to the rest).
SPECIAL = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<|endoftext|>after end",
    "text with </s> and <eos> and <bos> inside",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "[multimodal] <unused0> <start_of_image>",
    "<|im_start|><|im_start|>x<|im_end|>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
]


def main() -> None:
    models_dir = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(os.environ.get("ATHENA_CACHE_DIR", Path.home() / ".cache/athena")) / "models"
    )
    out = {"llama_cpp_python": llama_cpp.__version__, "models": []}
    for name in MODELS:
        path = next((models_dir / name).glob("*.gguf"))
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        cases = []
        for special, texts in ((False, PLAIN), (True, SPECIAL)):
            for text in texts:
                data = text.encode("utf-8")
                plain = llm.tokenize(data, add_bos=False, special=False)
                ids = {"plain": plain}
                # The other flag combinations, where they differ from plain.
                for add_bos in (False, True):
                    for parse in (False, True):
                        if add_bos or parse:
                            key = ("bos_" if add_bos else "") + ("parse" if parse else "plain")
                            got = llm.tokenize(data, add_bos=add_bos, special=parse)
                            if got != plain:
                                ids[key] = got
                cases.append({"text": text, "special": special, "ids": ids})
        out["models"].append({"name": name, "file": path.name, "cases": cases})
        del llm
    target = Path(__file__).with_name("golden_tokens.json")
    with open(target, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
