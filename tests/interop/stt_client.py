"""Transcribes a WAV file through a Wyoming speech-to-text server, as Home
Assistant's Wyoming integration does, using the reference `wyoming` package.

Sends `transcribe`, `audio-start`, 80 ms `audio-chunk`s and `audio-stop`
(optionally converting the audio first with the reference converter, to test
other formats), then prints one JSON object with every event received until
the final `transcript` (or `error`).
"""

import argparse
import asyncio
import json
import sys
import wave

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--wav", required=True)
    parser.add_argument("--language")
    parser.add_argument("--model")
    parser.add_argument("--rate", type=int, help="convert to this rate first")
    parser.add_argument("--width", type=int, help="convert to this sample width first")
    parser.add_argument("--channels", type=int, help="convert to this many channels first")
    parser.add_argument("--seconds", type=float, help="send only the first SECONDS")
    parser.add_argument("--realtime", action="store_true", help="pace chunks in real time")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    with wave.open(args.wav, "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    if args.seconds is not None:
        frames = frames[: int(args.seconds * rate) * width * channels]

    converter = AudioChunkConverter(
        rate=args.rate or rate, width=args.width or width, channels=args.channels or channels
    )
    audio = converter.convert(
        AudioChunk(rate=rate, width=width, channels=channels, audio=frames)
    )

    events = []
    async with AsyncClient.from_uri(args.uri) as client:
        await client.write_event(Transcribe(name=args.model, language=args.language).event())
        await client.write_event(
            AudioStart(rate=audio.rate, width=audio.width, channels=audio.channels).event()
        )
        step = int(audio.rate * 0.08) * audio.width * audio.channels
        for start in range(0, len(audio.audio), step):
            chunk = AudioChunk(
                rate=audio.rate,
                width=audio.width,
                channels=audio.channels,
                audio=audio.audio[start : start + step],
            )
            await client.write_event(chunk.event())
            if args.realtime:
                await asyncio.sleep(0.08)
        await client.write_event(AudioStop().event())

        while True:
            event = await asyncio.wait_for(client.read_event(), args.timeout)
            if event is None:
                break
            events.append({"type": event.type, "data": event.data})
            if Transcript.is_type(event.type) or Error.is_type(event.type):
                break

    print(json.dumps({"events": events}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
