"""The peer for the tts benchmark: piper-tts in-process on a Piper voice.

For each text: one warm-up, then --runs timed runs of `PiperVoice.synthesize`
(one audio chunk per sentence): seconds to the first chunk and to the last,
and seconds of audio. Prints one JSON object.
"""

import argparse
import json
import sys
import time

from piper import PiperVoice


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", action="append", required=True)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    started = time.perf_counter()
    voice = PiperVoice.load(args.model)
    next(iter(voice.synthesize("Warming up.")))
    cold = time.perf_counter() - started

    results = []
    for text in args.text:
        list(voice.synthesize(text))
        first, total, audio = [], [], 0.0
        for _ in range(args.runs):
            time.sleep(0.3)  # as the Rust side pauses between requests
            start = time.perf_counter()
            got_first = None
            samples = 0
            rate = 1
            for chunk in voice.synthesize(text):
                if got_first is None:
                    got_first = time.perf_counter() - start
                samples += len(chunk.audio_float_array)
                rate = chunk.sample_rate
            total.append(time.perf_counter() - start)
            first.append(got_first)
            audio = samples / rate
        results.append({"text": text, "first": first, "total": total, "audio_seconds": audio})
    print(json.dumps({"cold_start": cold, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
