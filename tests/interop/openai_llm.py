"""Talks to an OpenAI-compatible LLM server with the official `openai` client.

Usage: openai_llm.py --base-url URL --model ID CASE [--text T] [--seed N] ...

Cases (each prints one JSON object):
  models       the listed model ids
  chat         one chat completion (--system, --text, --max-tokens, --temperature,
               --seed, --stop): content, finish_reason, usage
  chat-stream  the same, streamed with include_usage: chunks, content, finish_reason, usage
  complete     a text completion of --text (also --stream)
  error        a chat request made wrong on purpose (--bad): status, code, message
  abandon      starts a streamed chat, reads --chunks chunks, closes the connection
"""

import argparse
import json
import sys

import http.client
import urllib.error
import urllib.parse
import urllib.request

import openai


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("case")
    p.add_argument("--system", default="You are a helpful assistant.")
    p.add_argument("--text", default="What is the capital of France?")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--bad")
    p.add_argument("--chunks", type=int, default=3)
    a = p.parse_args()

    client = openai.OpenAI(base_url=a.base_url + "/v1", api_key="none", max_retries=0, timeout=120)
    messages = [{"role": "system", "content": a.system}, {"role": "user", "content": a.text}]
    extra = {}
    if a.max_tokens is not None:
        extra["max_tokens"] = a.max_tokens
    if a.seed is not None:
        extra["seed"] = a.seed
    if a.stop:
        extra["stop"] = a.stop

    if a.case == "models":
        out = {"ids": [m.id for m in client.models.list().data]}
    elif a.case == "chat":
        r = client.chat.completions.create(
            model=a.model, messages=messages, temperature=a.temperature, **extra
        )
        out = {
            "content": r.choices[0].message.content,
            "finish_reason": r.choices[0].finish_reason,
            "usage": r.usage.model_dump(),
        }
    elif a.case == "chat-stream":
        stream = client.chat.completions.create(
            model=a.model,
            messages=messages,
            temperature=a.temperature,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        chunks, content, finish, usage = 0, "", None, None
        for chunk in stream:
            chunks += 1
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
            for choice in chunk.choices:
                content += choice.delta.content or ""
                finish = choice.finish_reason or finish
        out = {"chunks": chunks, "content": content, "finish_reason": finish, "usage": usage}
    elif a.case == "complete":
        if a.stream:
            text, finish, chunks = "", None, 0
            for chunk in client.completions.create(
                model=a.model, prompt=a.text, temperature=a.temperature, stream=True, **extra
            ):
                chunks += 1
                text += chunk.choices[0].text
                finish = chunk.choices[0].finish_reason or finish
            out = {"text": text, "finish_reason": finish, "chunks": chunks}
        else:
            r = client.completions.create(
                model=a.model, prompt=a.text, temperature=a.temperature, **extra
            )
            out = {
                "text": r.choices[0].text,
                "finish_reason": r.choices[0].finish_reason,
                "usage": r.usage.model_dump(),
            }
    elif a.case == "error":
        try:
            if a.bad == "invalid-json":
                request = urllib.request.Request(
                    a.base_url + "/v1/chat/completions",
                    data=b'{"model": ',
                    headers={"content-type": "application/json"},
                )
                try:
                    urllib.request.urlopen(request)
                    out = {"status": 200}
                except urllib.error.HTTPError as e:
                    body = json.loads(e.read())
                    out = {"status": e.code, "code": body["error"]["code"], "message": body["error"]["message"]}
            else:
                kwargs = {"model": a.model, "messages": messages}
                if a.bad == "unknown-model":
                    kwargs["model"] = "gpt-9"
                elif a.bad == "negative-max-tokens":
                    kwargs["max_tokens"] = -5
                elif a.bad == "too-long":
                    kwargs["messages"] = [{"role": "user", "content": "lights on " * 5000}]
                elif a.bad == "n":
                    kwargs["n"] = 2
                elif a.bad == "json-format":
                    kwargs["response_format"] = {"type": "json_object"}
                elif a.bad == "no-messages":
                    kwargs["messages"] = []
                client.chat.completions.create(**kwargs)
                out = {"status": 200}
        except openai.APIStatusError as e:
            body = e.body if isinstance(e.body, dict) else {}
            err = body.get("error", body) if isinstance(body, dict) else {}
            out = {"status": e.status_code, "code": err.get("code"), "message": err.get("message")}
    elif a.case == "abandon":
        url = urllib.parse.urlparse(a.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        body = {
            "model": a.model,
            "messages": messages,
            "stream": True,
            "max_tokens": a.max_tokens or 3000,
            "temperature": 1.0,
        }
        conn.request(
            "POST", "/v1/chat/completions", json.dumps(body), {"content-type": "application/json"}
        )
        response = conn.getresponse()
        seen = 0
        while seen < a.chunks:
            line = response.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                seen += 1
        conn.sock.close()
        conn.close()
        out = {"chunks_read": seen}
    else:
        print(f"unknown case {a.case}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
