"""Speaks text through a Wyoming text-to-speech server with the reference
`wyoming` package, as Home Assistant's Wyoming integration does.

Without --stream: one `synthesize`. With --stream: `synthesize-start`, one
`synthesize-chunk` per --chunk, the whole `synthesize` (for servers that do
not stream), `synthesize-stop`; with --wait-first-audio, chunks after the
first are sent only once the first `audio-start` has arrived.

Prints one JSON object: `log`, every event sent and received in order (audio
chunks with their byte count), and writes the received audio to --out (WAV).
Ends at `audio-stop` (plain) or `synthesize-stopped` (streaming), or at the
first `error` with --stop-on-error.
"""

import argparse
import asyncio
import json
import sys
import wave

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--text", default="")
    parser.add_argument("--chunk", action="append", default=[])
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--wait-first-audio", action="store_true")
    parser.add_argument("--voice")
    parser.add_argument("--language")
    parser.add_argument("--speaker")
    parser.add_argument("--out")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    voice = None
    if args.voice or args.language or args.speaker:
        voice = SynthesizeVoice(name=args.voice, language=args.language, speaker=args.speaker)

    log = []
    audio = bytearray()
    fmt = None

    async with AsyncClient.from_uri(args.uri) as client:

        async def send(event):
            await client.write_event(event)
            entry = {"sent": event.type}
            if event.data and "text" in event.data:
                entry["text"] = event.data["text"]
            log.append(entry)

        async def receive_until(done):
            nonlocal fmt
            while True:
                event = await asyncio.wait_for(client.read_event(), args.timeout)
                if event is None:
                    log.append({"received": "eof"})
                    return
                entry = {"received": event.type}
                if AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    fmt = (chunk.rate, chunk.width, chunk.channels)
                    audio.extend(chunk.audio)
                    entry["bytes"] = len(chunk.audio)
                    entry["rate"] = chunk.rate
                elif AudioStart.is_type(event.type):
                    entry["rate"] = AudioStart.from_event(event).rate
                elif Error.is_type(event.type):
                    error = Error.from_event(event)
                    entry["text"], entry["code"] = error.text, error.code
                log.append(entry)
                if done(event):
                    return

        if not args.stream:
            await send(Synthesize(text=args.text, voice=voice).event())
            await receive_until(
                lambda e: AudioStop.is_type(e.type) or Error.is_type(e.type)
            )
        else:
            chunks = args.chunk or [args.text]
            await send(SynthesizeStart(voice=voice).event())
            for i, text in enumerate(chunks):
                await send(SynthesizeChunk(text=text).event())
                if i == 0 and args.wait_first_audio:
                    await receive_until(lambda e: AudioStart.is_type(e.type) or Error.is_type(e.type))
            await send(Synthesize(text="".join(chunks), voice=voice).event())
            await send(SynthesizeStop().event())
            await receive_until(lambda e: SynthesizeStopped.is_type(e.type))

    if args.out and fmt is not None:
        with wave.open(args.out, "wb") as wav:
            wav.setframerate(fmt[0])
            wav.setsampwidth(fmt[1])
            wav.setnchannels(fmt[2])
            wav.writeframes(bytes(audio))
    print(json.dumps({"log": log, "audio_bytes": len(audio)}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
