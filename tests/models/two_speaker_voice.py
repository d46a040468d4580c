"""Builds a two-speaker Piper voice from a one-speaker one, for tests.

No multi-speaker Piper voice is packaged where the tests run, so this derives
one from a real voice. Like a real multi-speaker VITS model, the result takes
a `sid` input that conditions both halves of the network:

- before the vocoder, the speaker scales `scales` (noise, length, noise_w):
  speaker 1 speaks at 1.5 x the length scale;
- after the vocoder, the speaker scales the waveform: speaker 1 at half the
  amplitude.

Speaker 0 sounds exactly like the original voice. The `.onnx.json` gets
`num_speakers: 2` and a `speaker_id_map` (`plain` = 0, `slow_quiet` = 1).

Usage: two_speaker_voice.py --voice VOICE.onnx --out DIR --name NAME
Prints the path of the new `.onnx`.
"""

import argparse
import json
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LENGTH_FACTOR = 1.5
GAIN = 0.5


def derive(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    names = {i.name for i in graph.input}
    if "sid" in names:
        raise SystemExit("the voice already has speakers")
    # This export names its phoneme embedding `sid`: give the name to the input.
    for init in graph.initializer:
        if init.name == "sid":
            init.name = "phoneme_embedding"
            for node in graph.node:
                node.input[:] = ["phoneme_embedding" if i == "sid" else i for i in node.input]
    graph.input.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))

    # Before the vocoder: scales * table[sid].
    table = np.array([[1.0, 1.0, 1.0], [1.0, LENGTH_FACTOR, 1.0]], dtype=np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(table, "speaker_scales_table"),
            numpy_helper.from_array(np.array([3], dtype=np.int64), "speaker_scales_shape"),
        ]
    )
    for node in graph.node:
        node.input[:] = ["speaker_scales" if i == "scales" else i for i in node.input]
    head = [
        helper.make_node("Gather", ["speaker_scales_table", "sid"], ["speaker_row"], axis=0),
        helper.make_node("Reshape", ["speaker_row", "speaker_scales_shape"], ["speaker_factors"]),
        helper.make_node("Mul", ["scales", "speaker_factors"], ["speaker_scales"]),
    ]

    # After the vocoder: output * gain[sid].
    (output,) = graph.output
    for node in graph.node:
        node.output[:] = ["unscaled_output" if o == output.name else o for o in node.output]
    graph.initializer.append(
        numpy_helper.from_array(np.array([1.0, GAIN], dtype=np.float32), "speaker_gain_table")
    )
    tail = [
        helper.make_node("Gather", ["speaker_gain_table", "sid"], ["speaker_gain"], axis=0),
        helper.make_node("Mul", ["unscaled_output", "speaker_gain"], [output.name]),
    ]

    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voice", required=True, type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()

    model = derive(onnx.load(str(args.voice)))
    config = json.loads(pathlib.Path(str(args.voice) + ".json").read_text())
    config["num_speakers"] = 2
    config["speaker_id_map"] = {"plain": 0, "slow_quiet": 1}

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.name}.onnx"
    onnx.save(model, str(target))
    pathlib.Path(str(target) + ".json").write_text(json.dumps(config, indent=2))
    print(target)


if __name__ == "__main__":
    main()
