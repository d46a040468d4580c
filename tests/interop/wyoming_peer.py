#!/usr/bin/env python3
"""A Wyoming peer built on the reference Python package, for interoperability tests.

It uses only the `wyoming` package (pinned in tests/requirements.txt) and the
standard library, so whatever it accepts is what the reference accepts.

Subcommands:
  echo-server --uri URI        serve URI (tcp://HOST:PORT or unix://PATH); parse every
                               event with its typed class, re-serialise it and send it
                               back (unknown types as they came). With tcp port 0 it
                               prints "PORT <n>" once listening (unix: "READY").
  client --uri URI             send one event of every type the package defines (and
                               one unknown type) to an echo server and check each echo.
  malformed --host H --port P  check that a server refuses malformed frames with an
                               `error` event and keeps serving other connections.

Exit status: 0 when every check holds, 1 otherwise (a line per failure).
"""

import argparse
import asyncio
import importlib
import logging
import math
import pkgutil
import struct
import sys
from typing import Any, Dict, List, Optional, Tuple, Type

import wyoming
from wyoming.asr import (
    Transcribe,
    Transcript,
    TranscriptChunk,
    TranscriptStart,
    TranscriptStop,
    VadSensitivity,
)
from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.client import AsyncClient, AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, Eventable, async_read_event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop, NotHandled
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    HandleModel,
    HandleProgram,
    Info,
    IntentModel,
    IntentProgram,
    MicProgram,
    Satellite,
    SelectProgram,
    SndProgram,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
    WakeModel,
    WakeProgram,
)
from wyoming.intent import (
    Entity,
    Intent,
    IntentsStart,
    IntentsStop,
    NotRecognized,
    Recognize,
)
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import (
    PauseSatellite,
    RunSatellite,
    SatelliteConnected,
    SatelliteDisconnected,
    StreamingStarted,
    StreamingStopped,
)
from wyoming.server import AsyncEventHandler, AsyncServer, AsyncTcpServer
from wyoming.snd import Played
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeTextFormat,
    SynthesizeVoice,
)
from wyoming.user_event import UserEvent
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detect, Detection, NotDetected

TIMEOUT = 10.0


def event_classes() -> List[Type[Eventable]]:
    """Every concrete event class the installed package defines.

    Imports each top-level module of the package (those needing optional extras are
    skipped), so that an event type added in a later release is noticed.
    """
    logging.disable(logging.CRITICAL)  # modules needing extras log their absence
    for module in pkgutil.iter_modules(wyoming.__path__):
        try:
            importlib.import_module(f"wyoming.{module.name}")
        except ImportError:
            pass
    logging.disable(logging.NOTSET)
    found: List[Type[Eventable]] = []
    pending = list(Eventable.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("wyoming.") and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda cls: cls.__name__)


def brief(value: Any, limit: int = 400) -> str:
    """repr() cut short, so that a mismatch on audio stays readable."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def typed_class(event_type: str) -> Optional[Type[Eventable]]:
    """The package's class for an event type, or None when it has none."""
    for cls in EVENT_CLASSES:
        if cls.is_type(event_type):
            return cls
    return None


# -----------------------------------------------------------------------------
# echo-server


class EchoHandler(AsyncEventHandler):
    """Sends every event back after a trip through its typed class."""

    async def handle_event(self, event: Event) -> bool:
        cls = typed_class(event.type)
        if cls is not None:
            try:
                event = cls.from_event(event).event()
            except Exception as err:  # pylint: disable=broad-except
                print(f"cannot parse {event.type}: {err!r}", file=sys.stderr)
                return False
        await self.write_event(event)
        return True


async def echo_server(uri: str, until_stdin_closes: bool) -> int:
    server = AsyncServer.from_uri(uri)
    await server.start(EchoHandler)
    # The package does not expose the bound address; its asyncio server does.
    if isinstance(server, AsyncTcpServer):
        port = server._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access
        print(f"PORT {port}", flush=True)
    else:
        print("READY", flush=True)

    loop = asyncio.get_running_loop()
    if until_stdin_closes:
        # The parent holds our stdin: when it exits, so do we.
        await loop.run_in_executor(None, sys.stdin.buffer.read)
    else:
        await loop.create_future()
    await server.stop()
    return 0


# -----------------------------------------------------------------------------
# client


def pcm_sine(rate: int = 16000, seconds: float = 0.1, hz: float = 440.0) -> bytes:
    """16-bit little-endian mono PCM of a sine tone."""
    samples = int(rate * seconds)
    return struct.pack(
        f"<{samples}h",
        *(int(12000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(samples)),
    )


def sample_info() -> Info:
    """An `info` with one program of every kind, and a satellite."""
    by = Attribution(name="Athena Team", url="https://example.org/athena")

    def artifact(name: str, **kwargs: Any) -> Dict[str, Any]:
        fields = {"description": None, "version": None}
        fields.update(kwargs)
        return {"name": name, "attribution": by, "installed": True, **fields}

    return Info(
        asr=[
            AsrProgram(
                **artifact("athena-stt", description="Speech to text", version="1.2.3"),
                models=[
                    AsrModel(**artifact("tiny.en"), languages=["en"]),
                    AsrModel(
                        **artifact("base", description="Multilingual", version="2"),
                        languages=["en", "de", "fr"],
                    ),
                ],
                supports_transcript_streaming=True,
                requires_external_vad=False,
                prefers_auto_gain_enabled=False,
                prefers_noise_reduction_enabled=False,
            )
        ],
        tts=[
            TtsProgram(
                **artifact("athena-tts", description="Text to speech"),
                voices=[
                    TtsVoice(
                        **artifact("en_GB-vctk", version="1.0"),
                        languages=["en_GB"],
                        speakers=[TtsVoiceSpeaker(name="p225"), TtsVoiceSpeaker(name="p226")],
                    ),
                    TtsVoice(**artifact("de_DE-thorsten"), languages=["de_DE"]),
                ],
                supports_synthesize_streaming=True,
            )
        ],
        handle=[
            HandleProgram(
                **artifact("athena-llm"),
                models=[HandleModel(**artifact("qwen"), languages=["en", "de"])],
                supports_handled_streaming=True,
                supports_home_control=True,
            )
        ],
        intent=[
            IntentProgram(
                **artifact("athena-intents"),
                models=[IntentModel(**artifact("rules"), languages=["en"])],
            )
        ],
        wake=[
            WakeProgram(
                **artifact("athena-wake"),
                models=[
                    WakeModel(**artifact("hey_athena"), languages=["en"], phrase="hey Athena"),
                    WakeModel(**artifact("okay_nabu"), languages=[], phrase=None),
                ],
            )
        ],
        mic=[MicProgram(**artifact("mic"), mic_format=AudioFormat(16000, 2, 1))],
        snd=[SndProgram(**artifact("snd"), snd_format=AudioFormat(22050, 2, 2))],
        satellite=Satellite(
            **artifact("kitchen-satellite", description="By the fridge"),
            area="Kitchen",
            has_vad=True,
            active_wake_words=["hey_athena"],
            max_active_wake_words=2,
            supports_trigger=True,
        ),
    )


def sample_events() -> Tuple[List[Eventable], Event]:
    """One instance of every event type (fields filled where possible), and an
    event of a type the package does not know."""
    context = {
        "conversation_id": "c-42",
        "turn": 3,
        "nested": {"list": [1, 2.5, None, True, "é ☃ 🦉"], "empty": {}},
    }
    audio = pcm_sine()
    events: List[Eventable] = [
        AudioStart(rate=16000, width=2, channels=1, timestamp=0),
        AudioChunk(rate=16000, width=2, channels=1, audio=audio, timestamp=100),
        AudioChunk(rate=48000, width=4, channels=2, audio=audio[:1024]),
        AudioStop(timestamp=1_700_000_000_000_000_000),
        Describe(),
        sample_info(),
        Info(),
        SelectProgram(name="athena-stt"),
        Transcribe(
            name="tiny.en",
            language="en",
            context=context,
            vad_sensitivity=VadSensitivity.AGGRESSIVE,
            transcript_names=["Living Room Lamp", "Ørsted"],
            transcript_terms=["thermostat"],
        ),
        Transcribe(),
        Transcript(
            text="Turn on the lamp.\nThanks! \"quoted\" \\ é", language="en", context=context
        ),
        TranscriptStart(language="en", context=context),
        TranscriptChunk(text="Turn on"),
        TranscriptStop(),
        Synthesize(
            text="<speak>Hello</speak>",
            voice=SynthesizeVoice(name="en_GB-vctk", speaker="p225"),
            text_format=SynthesizeTextFormat.SSML,
            context=context,
        ),
        Synthesize(text="Hallo", voice=SynthesizeVoice(language="de_DE")),
        SynthesizeStart(
            voice=SynthesizeVoice(name="en_GB-vctk", speaker="p226"),
            text_format=SynthesizeTextFormat.TEXT,
            context=context,
        ),
        SynthesizeChunk(text="Hello, "),
        SynthesizeStop(),
        SynthesizeStopped(),
        Detect(names=["hey_athena", "okay_nabu"], context=context),
        Detection(name="hey_athena", timestamp=1234, speaker="alice", context=context),
        NotDetected(context=context),
        VoiceStarted(timestamp=250),
        VoiceStopped(timestamp=1750),
        RunPipeline(
            start_stage=PipelineStage.WAKE,
            end_stage=PipelineStage.TTS,
            wake_word_name="hey_athena",
            restart_on_end=True,
            wake_word_names=["hey_athena", "okay_nabu"],
            announce_text="Dinner is ready",
        ),
        RunPipeline(start_stage=PipelineStage.ASR, end_stage=PipelineStage.HANDLE),
        RunSatellite(),
        PauseSatellite(),
        SatelliteConnected(),
        SatelliteDisconnected(),
        StreamingStarted(),
        StreamingStopped(),
        Played(),
        Recognize(text="turn on the kitchen light", context=context),
        Intent(
            name="HassTurnOn",
            entities=[
                Entity(name="area", value="kitchen"),
                Entity(name="brightness", value=50),
                Entity(name="color", value=[255, 128.5, 0]),
                Entity(name="options", value={"transition": 2, "flash": False}),
                Entity(name="nothing"),
            ],
            text="Turned on the light",
            context=context,
        ),
        Intent(name="HassNevermind"),
        NotRecognized(text="Sorry, I did not understand", context=context),
        IntentsStart(context=context),
        IntentsStop(context=context),
        Handled(text="The light is on.", context=context),
        NotHandled(text="I cannot do that.", context=context),
        HandledStart(context=context),
        HandledChunk(text="The light "),
        HandledStop(),
        TimerStarted(
            id="t1",
            total_seconds=5430,
            name="pasta",
            start_hours=1,
            start_minutes=30,
            start_seconds=30,
        ),
        TimerUpdated(id="t1", is_active=False, total_seconds=600),
        TimerCancelled(id="t1"),
        TimerFinished(id="t2"),
        Error(text="Something went wrong", code="oops"),
        Error(text="No code"),
        Ping(text="ping-1"),
        Ping(),
        Pong(text="ping-1"),
        UserEvent(name="athena.mode", data={"mode": "night", "level": 0.25}, context=context),
        UserEvent(name="bare"),
    ]
    unknown = Event(
        type="x-athena-from-the-future",
        data={"new_field": [1, "two", {"three": 3.0}], "flag": True, "nothing": None},
        payload=bytes(range(256)),
    )
    return events, unknown


async def run_client(uri: str) -> int:
    events, unknown = sample_events()
    failures: List[str] = []

    covered = {type(e) for e in events}
    for cls in EVENT_CLASSES:
        if cls not in covered:
            failures.append(f"no sample of {cls.__name__}: add one to sample_events()")

    async with AsyncClient.from_uri(uri, connect_timeout=TIMEOUT, read_timeout=TIMEOUT) as client:
        for i, sent in enumerate(events):
            name = f"#{i} {type(sent).__name__}"
            wire = sent.event()
            await client.write_event(wire)
            echo = await client.read_event()
            if echo is None:
                failures.append(f"{name}: connection closed instead of an echo")
                break
            if echo.type != wire.type:
                failures.append(f"{name}: echo has type {echo.type!r}, sent {wire.type!r}")
                continue
            try:
                back = type(sent).from_event(echo)
            except Exception as err:  # pylint: disable=broad-except
                failures.append(f"{name}: echo does not parse: {err!r}; data {brief(echo.data)}")
                continue
            if back != sent:
                failures.append(
                    f"{name}: echo differs\n  sent: {brief(sent)}\n  back: {brief(back)}"
                )
            if (echo.payload or b"") != (wire.payload or b""):
                failures.append(
                    f"{name}: payload differs ({len(echo.payload or b'')} bytes back, "
                    f"{len(wire.payload or b'')} sent)"
                )

        await client.write_event(unknown)
        echo = await client.read_event()
        if echo is None:
            failures.append("unknown event: connection closed instead of an echo")
        elif (echo.type, echo.data, echo.payload) != (unknown.type, unknown.data, unknown.payload):
            failures.append(
                f"unknown event: echo differs\n  sent: {brief(unknown)}\n  back: {brief(echo)}"
            )

    for failure in failures:
        print(f"MISMATCH {failure}")
    print(f"{len(events) + 1} events sent, {len(failures)} mismatches")
    return 1 if failures else 0


# -----------------------------------------------------------------------------
# malformed


async def expect_error_then_close(
    host: str, port: int, name: str, send: bytes, code: str
) -> Optional[str]:
    """Sends raw bytes on a new connection; expects an `error` event with `code`,
    then the end of the stream. Returns what went wrong, or None."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(send)
        await writer.drain()
        event = await asyncio.wait_for(async_read_event(reader), TIMEOUT)
        if event is None or not Error.is_type(event.type):
            return f"{name}: expected an error event, got {event!r}"
        error = Error.from_event(event)
        if error.code != code:
            return f"{name}: expected code {code!r}, got {error.code!r} ({error.text})"
        rest = await asyncio.wait_for(reader.read(), TIMEOUT)
        if rest:
            return f"{name}: expected the connection closed, got {rest[:80]!r}"
        print(f"ok {name}: {code} ({error.text}), then closed")
        return None
    except (asyncio.TimeoutError, ConnectionError) as err:
        return f"{name}: {err!r}"
    finally:
        writer.close()


async def ping(client: AsyncTcpClient, text: str) -> Optional[str]:
    """Pings on an open connection; returns what went wrong, or None."""
    try:
        await client.write_event(Ping(text=text).event())
        event = await client.read_event()
    except (asyncio.TimeoutError, ConnectionError) as err:
        return f"ping {text!r}: {err!r}"
    if event is None or not Pong.is_type(event.type):
        return f"ping {text!r}: expected pong, got {event!r}"
    if Pong.from_event(event).text != text:
        return f"ping {text!r}: pong has text {Pong.from_event(event).text!r}"
    print(f"ok ping {text!r}: pong")
    return None


async def run_malformed(host: str, port: int, max_header: int, max_payload: int) -> int:
    failures: List[Optional[str]] = []
    bystander = AsyncTcpClient(host, port, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)
    async with bystander:
        failures.append(await ping(bystander, "before"))
        failures.append(
            await expect_error_then_close(
                host, port, "invalid JSON header", b"{this is not json}\n", "invalid-header"
            )
        )
        # Only the header is sent: the server must refuse without waiting for the payload.
        header = (
            '{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1},'
            f' "payload_length": {max_payload << 20}}}\n'
        )
        failures.append(
            await expect_error_then_close(
                host, port, "huge payload_length", header.encode(), "payload-too-large"
            )
        )
        # Just over the limit, no newline: everything sent is read by the server,
        # so its close is a clean FIN rather than a reset.
        failures.append(
            await expect_error_then_close(
                host,
                port,
                "header line too long",
                b'{"type": "' + b"x" * max_header,
                "header-too-large",
            )
        )
        failures.append(await ping(bystander, "after"))

    errors = [f for f in failures if f is not None]
    for failure in errors:
        print(f"FAIL {failure}")
    print(f"{len(failures)} checks, {len(errors)} failed")
    return 1 if errors else 0


# -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    echo = commands.add_parser("echo-server", help="echo events through typed classes")
    echo.add_argument("--uri", required=True, help="tcp://HOST:PORT or unix://PATH")
    echo.add_argument(
        "--until-stdin-closes",
        action="store_true",
        help="exit when standard input reaches end of file (the parent exited)",
    )

    client = commands.add_parser("client", help="send every event type to an echo server")
    client.add_argument("--uri", required=True, help="tcp://HOST:PORT or unix://PATH")

    malformed = commands.add_parser("malformed", help="send malformed frames to a server")
    malformed.add_argument("--host", required=True)
    malformed.add_argument("--port", required=True, type=int)
    malformed.add_argument("--max-header", type=int, default=4096, help="server's header limit")
    malformed.add_argument("--max-payload", type=int, default=65536, help="server's payload limit")

    args = parser.parse_args()
    if args.command == "echo-server":
        return asyncio.run(echo_server(args.uri, args.until_stdin_closes))
    if args.command == "client":
        return asyncio.run(run_client(args.uri))
    return asyncio.run(run_malformed(args.host, args.port, args.max_header, args.max_payload))


EVENT_CLASSES = event_classes()

if __name__ == "__main__":
    sys.exit(main())
