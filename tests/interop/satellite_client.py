#!/usr/bin/env python3
"""A satellite that dials the orchestrator, built on the reference `wyoming` package.

`wyoming-satellite` only listens (the server side); this is the other
direction, a satellite as a client: it connects to --uri, sends
`run-pipeline` (from --start-stage to `tts`), streams --audio (raw 16 kHz
16-bit mono PCM) as `audio-chunk` events in real time with no `audio-start`,
as a real satellite does, and reads the orchestrator's events until the
reply's `audio-stop` (then says `played`) or an `error`.

Prints one JSON object: {"events": [types, in order], "transcript",
"reply" (the `synthesize` text), "audio_bytes" (of the reply),
"error" (null unless one came)}. Exit status 0 when the run reached the
reply's `audio-stop`, 1 otherwise (an error, a timeout, a hang-up).
"""

import argparse
import asyncio
import json
import sys
from typing import Any, Dict

from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.snd import Played
from wyoming.tts import Synthesize

RATE = 16000
CHUNK_SAMPLES = 1024


async def stream(client: AsyncClient, pcm: bytes, done: asyncio.Event) -> None:
    """Sends `pcm`, then silence, in real time until `done`."""
    chunk_bytes = CHUNK_SAMPLES * 2
    period = CHUNK_SAMPLES / RATE
    offset = 0
    while not done.is_set():
        chunk = pcm[offset : offset + chunk_bytes].ljust(chunk_bytes, b"\0")
        offset += chunk_bytes
        await client.write_event(AudioChunk(rate=RATE, width=2, channels=1, audio=chunk).event())
        try:
            await asyncio.wait_for(done.wait(), period)
        except asyncio.TimeoutError:
            pass


async def run(args: argparse.Namespace, result: Dict[str, Any]) -> None:
    """One pipeline run; what happened is written into `result`."""
    with open(args.audio, "rb") as file:
        pcm = file.read()
    async with AsyncClient.from_uri(args.uri) as client:
        await client.write_event(
            RunPipeline(
                start_stage=PipelineStage(args.start_stage), end_stage=PipelineStage.TTS
            ).event()
        )
        done = asyncio.Event()
        sending = asyncio.create_task(stream(client, pcm, done))
        try:
            while True:
                event = await client.read_event()
                if event is None:
                    result["error"] = "the orchestrator hung up"
                    break
                result["events"].append(event.type)
                if Transcript.is_type(event.type):
                    result["transcript"] = Transcript.from_event(event).text
                    # A satellite stops streaming once it has its transcript.
                    done.set()
                elif Synthesize.is_type(event.type):
                    result["reply"] = Synthesize.from_event(event).text
                elif AudioChunk.is_type(event.type):
                    result["audio_bytes"] += len(AudioChunk.from_event(event).audio)
                elif AudioStop.is_type(event.type):
                    await client.write_event(Played().event())
                    break
                elif Error.is_type(event.type):
                    result["error"] = Error.from_event(event).text
                    break
        finally:
            done.set()
            await sending


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True, help="tcp://HOST:PORT of the orchestrator")
    parser.add_argument("--audio", required=True, help="raw 16 kHz 16-bit mono PCM to speak")
    parser.add_argument("--start-stage", default="asr", choices=["wake", "asr"])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run")
    args = parser.parse_args()

    result: Dict[str, Any] = {
        "events": [],
        "transcript": None,
        "reply": None,
        "audio_bytes": 0,
        "error": None,
    }
    try:
        asyncio.run(asyncio.wait_for(run(args, result), args.timeout))
    except asyncio.TimeoutError:
        result["error"] = f"no reply within {args.timeout} s"
    except OSError as err:
        result["error"] = f"cannot reach {args.uri}: {err}"
    print(json.dumps(result))
    return 0 if result["error"] is None and "audio-stop" in result["events"] else 1


if __name__ == "__main__":
    sys.exit(main())
