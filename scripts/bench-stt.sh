#!/usr/bin/env bash
# Speech-to-text benchmark: Athena's engines (whisper.cpp, candle) against
# faster-whisper (PyPI, CTranslate2) on the same CTranslate2 weights from the
# model catalog, on four clips (3 s, 4 s, 5 s, 11 s), side by side in one run;
# prints two tables (reduced and full context).
#
# ATHENA_BENCH_MODELS (default whisper-tiny.en,whisper-base), ATHENA_BENCH_RUNS (5).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ATHENA_ROOT"
"$ATHENA_ROOT/scripts/setup.sh"

# Clips: espeak-ng speaks the two commands, sox makes them 16 kHz mono s16.
missing=()
for p in espeak-ng sox; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
clips="$ATHENA_CACHE_DIR/bench/clips"
mkdir -p "$clips"
make_clip() { # name speed text
    [[ -f "$clips/$1" ]] && return
    espeak-ng -v en-us -s "$2" -w "$clips/raw-$1" "$3"
    sox -D "$clips/raw-$1" -r 16000 -c 1 -b 16 "$clips/$1"
    rm "$clips/raw-$1"
}
make_clip cmd4s.wav 145 "turn on the kitchen lights and set them to fifty percent"
make_clip short3s.wav 140 "what time is check out tomorrow morning"
make_clip cmd5s.wav 150 "set the living room thermostat to twenty one degrees and close the blinds"

cargo build --release --locked -p athena
cp "$("$CARGO_TARGET_DIR/release/athena" models path sample-jfk)/jfk.wav" "$clips/jfk.wav"

# The peer, in its own venv (kept between runs).
venv="$ATHENA_CACHE_DIR/bench-venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import faster_whisper' 2>/dev/null \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check "faster-whisper==1.2.1"

ATHENA_BENCH_PYTHON="$venv/bin/python" ATHENA_BENCH_CLIPS="$clips" \
    cargo bench --locked -p athena-stt --bench transcribe
