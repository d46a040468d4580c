"""Asks a Wyoming server for its info with the reference `wyoming` client.

Prints one JSON object: the parsed info (as the reference parses it) and
whether a ping got its pong. Exits non-zero if the server does not answer.
"""

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()

    async with AsyncClient.from_uri(args.uri) as client:
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), args.timeout)
        if event is None or not Info.is_type(event.type):
            print(f"expected info, got {event}", file=sys.stderr)
            return 1
        info = Info.from_event(event)

        await client.write_event(Ping(text="athena").event())
        event = await asyncio.wait_for(client.read_event(), args.timeout)
        pong = event is not None and Pong.is_type(event.type)
        pong_text = Pong.from_event(event).text if pong else None

    print(json.dumps({"info": asdict(info), "pong": pong_text}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
