"""Speaks text with the official `openai` client against an
OpenAI-compatible `/v1/audio/speech`, streaming the response to --out, and
prints the byte count (or the API error) as JSON."""

import argparse
import json
import sys

import openai


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--input-file", action="store_true", help="--input names a file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="tts-1")
    parser.add_argument("--voice", default="alloy")
    parser.add_argument("--format", default="wav")
    parser.add_argument("--speed", type=float)
    args = parser.parse_args()

    text = args.input
    if args.input_file:
        with open(args.input, encoding="utf-8") as f:
            text = f.read()
    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0)
    extra = {} if args.speed is None else {"speed": args.speed}
    try:
        with client.audio.speech.with_streaming_response.create(
            model=args.model,
            voice=args.voice,
            input=text,
            response_format=args.format,
            **extra,
        ) as response:
            pieces = 0
            with open(args.out, "wb") as out:
                for piece in response.iter_bytes():
                    out.write(piece)
                    pieces += 1
            print(json.dumps({"status": response.status_code, "content_type": response.headers.get("content-type"), "pieces": pieces}))
    except openai.APIStatusError as e:
        print(json.dumps({"status": e.status_code, "error": e.body}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
