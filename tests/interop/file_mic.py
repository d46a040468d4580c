#!/usr/bin/env python3
"""A microphone for `wyoming-satellite --mic-command`, fed from files.

Writes raw 16-bit little-endian mono PCM to standard output in real time
(chunks of --chunk samples at --rate): silence, except that whenever a file
appears at --say, its contents (raw PCM in the same format) are spoken next
and the file is removed. Write that file elsewhere and rename it into place,
so that it is never read half-written.

Standard library only. Exits when its reader goes away (a broken pipe).
"""

import argparse
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--say", required=True, help="path watched for PCM to speak")
    parser.add_argument("--rate", type=int, default=16000, help="samples per second")
    parser.add_argument("--chunk", type=int, default=1024, help="samples per write")
    args = parser.parse_args()

    chunk_bytes = args.chunk * 2
    period = args.chunk / args.rate
    silence = bytes(chunk_bytes)
    pending = b""
    out = sys.stdout.fileno()
    next_at = time.monotonic()
    try:
        while True:
            if not pending:
                try:
                    with open(args.say, "rb") as file:
                        pending = file.read()
                    os.remove(args.say)
                except FileNotFoundError:
                    pass
            if pending:
                chunk, pending = pending[:chunk_bytes], pending[chunk_bytes:]
                chunk = chunk.ljust(chunk_bytes, b"\0")
            else:
                chunk = silence
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
            # Real time, without bursts to catch up after the reader stalled.
            next_at = max(next_at + period, time.monotonic() - period)
            time.sleep(max(0.0, next_at - time.monotonic()))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
