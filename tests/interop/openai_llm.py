"""Talks to an OpenAI-compatible LLM server with the official `openai` client.

Usage: openai_llm.py --base-url URL --model ID CASE [--text T] [--seed N] ...

Cases (each prints one JSON object):
  models       the listed model ids
  chat         one chat completion (--system, --text, --max-tokens, --temperature,
               --seed, --stop): content, finish_reason, usage
  chat-stream  the same, streamed with include_usage: chunks, content, finish_reason, usage
  complete     a text completion of --text (also --stream)
  parse        structured output the way the client's own helper does it
               (`chat.completions.parse` with a pydantic model): content, parsed
  json-object  response_format json_object (also --stream): content, parsed
  tools        a chat with two tools (--tool-choice auto|required|none|<name>,
               --stream): tool_calls [{name, arguments}], content, finish_reason
  tool-turn    a call, its result sent back, and the answer after it
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
import pydantic
from typing import Literal, Optional


class Command(pydantic.BaseModel):
    """What a smart-home request asks for."""

    action: Literal["turn_on", "turn_off"]
    room: str
    brightness: Optional[int] = pydantic.Field(default=None, ge=0, le=100)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "set_light",
            "description": "Switch the lights of a room on or off.",
            "parameters": {
                "type": "object",
                "properties": {
                    "room": {"type": "string", "description": "The room"},
                    "on": {"type": "boolean", "description": "true to switch on"},
                },
                "required": ["room", "on"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
]


def tool_choice(value: str):
    if value in ("auto", "required", "none"):
        return value
    return {"type": "function", "function": {"name": value}}


def calls_of(tool_calls) -> list:
    return [
        {"id": c.id, "name": c.function.name, "arguments": json.loads(c.function.arguments)}
        for c in tool_calls or []
    ]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("case")
    p.add_argument("--system", default="You are a helpful assistant.")
    p.add_argument("--text", default="What is the capital of France? Answer in one short sentence.")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--bad")
    p.add_argument("--chunks", type=int, default=3)
    p.add_argument("--tool-choice", default="auto")
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
    elif a.case == "parse":
        r = client.chat.completions.parse(
            model=a.model, messages=messages, temperature=a.temperature, response_format=Command, **extra
        )
        message = r.choices[0].message
        out = {
            "content": message.content,
            "parsed": message.parsed.model_dump() if message.parsed else None,
            "finish_reason": r.choices[0].finish_reason,
        }
    elif a.case == "json-object":
        kwargs = dict(
            model=a.model,
            messages=messages,
            temperature=a.temperature,
            response_format={"type": "json_object"},
            **extra,
        )
        if a.stream:
            content, finish = "", None
            for chunk in client.chat.completions.create(stream=True, **kwargs):
                for choice in chunk.choices:
                    content += choice.delta.content or ""
                    finish = choice.finish_reason or finish
        else:
            r = client.chat.completions.create(**kwargs)
            content, finish = r.choices[0].message.content, r.choices[0].finish_reason
        parsed = json.loads(content) if finish == "stop" else None
        out = {"content": content, "parsed": parsed, "finish_reason": finish}
    elif a.case == "tools":
        kwargs = dict(
            model=a.model,
            messages=messages,
            temperature=a.temperature,
            tools=TOOLS,
            tool_choice=tool_choice(a.tool_choice),
            **extra,
        )
        if a.stream:
            content, finish, calls = "", None, {}
            for chunk in client.chat.completions.create(stream=True, **kwargs):
                for choice in chunk.choices:
                    content += choice.delta.content or ""
                    finish = choice.finish_reason or finish
                    for d in choice.delta.tool_calls or []:
                        call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
                        call["id"] += d.id or ""
                        call["name"] += d.function.name or ""
                        call["arguments"] += d.function.arguments or ""
            tool_calls = [
                {"id": c["id"], "name": c["name"], "arguments": json.loads(c["arguments"])}
                for _, c in sorted(calls.items())
            ]
        else:
            r = client.chat.completions.create(**kwargs)
            message = r.choices[0].message
            content, finish, tool_calls = message.content or "", r.choices[0].finish_reason, calls_of(message.tool_calls)
        out = {"content": content, "tool_calls": tool_calls, "finish_reason": finish}
    elif a.case == "tool-turn":
        first = client.chat.completions.create(
            model=a.model,
            messages=messages,
            temperature=a.temperature,
            tools=TOOLS,
            tool_choice=tool_choice(a.tool_choice),
            **extra,
        )
        call = first.choices[0].message.tool_calls[0]
        follow = messages + [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"forecast": "sunny, 24 degrees"})},
        ]
        r = client.chat.completions.create(
            model=a.model, messages=follow, temperature=a.temperature, tools=TOOLS, tool_choice="none", **extra
        )
        out = {
            "first": calls_of(first.choices[0].message.tool_calls),
            "content": r.choices[0].message.content,
            "finish_reason": r.choices[0].finish_reason,
            "tool_calls": calls_of(r.choices[0].message.tool_calls),
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
                elif a.bad == "unsupported-schema":
                    kwargs["response_format"] = {
                        "type": "json_schema",
                        "json_schema": {"name": "code", "schema": {"type": "string", "pattern": "^[0-9]{4}$"}},
                    }
                elif a.bad == "unknown-tool":
                    kwargs["tools"] = TOOLS
                    kwargs["tool_choice"] = {"type": "function", "function": {"name": "open_door"}}
                elif a.bad == "out-of-bounds":
                    # The grammar lets any integer through; the bound is checked after.
                    kwargs["response_format"] = {
                        "type": "json_schema",
                        "json_schema": {
                            "name": "count",
                            "schema": {
                                "type": "object",
                                "properties": {"legs": {"type": "integer", "minimum": 1000000}},
                                "required": ["legs"],
                            },
                        },
                    }
                    kwargs["messages"] = [{"role": "user", "content": "How many legs does a cat have? Answer in JSON."}]
                    kwargs["max_tokens"] = 30
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
