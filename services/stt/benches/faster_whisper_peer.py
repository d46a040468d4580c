"""The peer side of the stt benchmark: faster-whisper (CTranslate2) on the
very same CTranslate2 weights and clips, timed the same way (audio already in
memory → final text), median of RUNS after one warm-up run.

Prints one JSON object: {"clip": {"median_s": ..., "text": ...}, ...}.
"""

import argparse
import json
import statistics
import sys
import time
import wave

import numpy as np
from faster_whisper import WhisperModel


def load(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--language")
    parser.add_argument("clips", nargs="+")
    args = parser.parse_args()

    model = WhisperModel(
        args.model_dir, device="cpu", compute_type=args.compute_type, cpu_threads=args.threads
    )
    results = {}
    for clip in args.clips:
        audio = load(clip)

        def run() -> str:
            segments, _ = model.transcribe(
                audio,
                beam_size=1,
                language=args.language,
                vad_filter=False,
                without_timestamps=True,
                condition_on_previous_text=False,
            )
            return "".join(s.text for s in segments).strip()

        run()
        times = []
        text = ""
        for _ in range(args.runs):
            start = time.perf_counter()
            text = run()
            times.append(time.perf_counter() - start)
        results[clip] = {"median_s": statistics.median(times), "text": text}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
