"""Transcribes a WAV file with the official `openai` client against an
OpenAI-compatible server, and prints the text (or the API error) as JSON."""

import argparse
import json
import sys

import openai


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--wav", required=True)
    parser.add_argument("--model", default="whisper-1")
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0)
    try:
        with open(args.wav, "rb") as f:
            result = client.audio.transcriptions.create(model=args.model, file=f)
        print(json.dumps({"text": result.text}))
    except openai.APIStatusError as e:
        print(json.dumps({"status": e.status_code, "error": e.body}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
