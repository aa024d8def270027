"""This package's engines against the reference implementation's eager torch path.

The official Depth Anything V2 code (and transformers' port, ``attn_implementation=
"eager"``, the only one it offers) computes attention as explicit ``q·kᵀ``, softmax,
``·v``; this package's torch backend uses fused ``scaled_dot_product_attention``. This
script times, round-robin on the same random ViT-S weights and the same 640×480 frame
size (network input 518 → 518×686):

* ``reference eager`` - transformers ``DepthAnythingForDepthEstimation``, eager attention;
* ``torch`` - this package's torch backend (eager, no ``torch.compile``);
* ``onnxruntime`` and ``onnxruntime-int8`` - this package's ONNX Runtime backend.

It also checks that all of them compute the same network (relative L2 to the reference).
Usage: .venv/bin/python bench/reference_eager.py [--iterations 5] [--out bench/results]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _record import BenchRun, write_results
from tables import table_of

from dav2_ros.commands.bench import INT8_ALIAS, engine_spec
from dav2_ros.engines import create_engine
from dav2_ros.engines.threads import default_threads
from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import save_hf_model
from dav2_ros.model.random_weights import randomize_weights_
from dav2_ros.model.transforms import model_input_size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--input-size", type=int, default=518)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON")
    return parser.parse_args(argv)


def reference_model(model: DepthAnythingV2):
    """The same weights in transformers' implementation (eager attention)."""
    from transformers import DepthAnythingForDepthEstimation

    with tempfile.TemporaryDirectory() as directory:
        save_hf_model(model, directory)
        reference = DepthAnythingForDepthEstimation.from_pretrained(
            directory, attn_implementation="eager"
        )
    return reference.eval()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    threads = default_threads()
    torch.set_num_threads(threads)
    model = randomize_weights_(DepthAnythingV2(args.encoder, "relative"), seed=0).eval()
    input_hw = model_input_size(480, 640, args.input_size)
    batch = np.random.default_rng(0).standard_normal((1, 3, *input_hw)).astype(np.float32)

    reference = reference_model(model)

    def run_reference() -> np.ndarray:
        with torch.inference_mode():
            return reference(pixel_values=torch.from_numpy(batch)).predicted_depth.numpy()

    runners = {"reference eager (transformers)": run_reference}
    for name in ("torch", "onnxruntime", INT8_ALIAS):  # as `dav2 bench` names them
        config = engine_spec(name).config(input_hw)
        runners[name] = partial(create_engine(model, config).infer, batch)

    outputs = {name: run() for name, run in runners.items()}  # warm-up, and the outputs
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.iterations):  # round-robin: a load change hits every runner alike
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    expected = outputs["reference eager (transformers)"]
    rows = []
    for name in runners:
        median_ms = 1e3 * float(np.median(times[name]))
        error = float(np.linalg.norm(outputs[name] - expected) / np.linalg.norm(expected))
        rows.append({"runner": name, "infer_ms": median_ms, "rel_l2_vs_reference": error})
    ms = {row["runner"]: row["infer_ms"] for row in rows}
    for row in rows:
        row["reference_over_this"] = ms["reference eager (transformers)"] / row["infer_ms"]
        row["torch_over_this"] = ms["torch"] / row["infer_ms"]

    settings = {
        "encoder": args.encoder,
        "input_size": args.input_size,
        "network_input_hw": list(input_hw),
        "threads": threads,
        "iterations": args.iterations,
        "weights": "random, the same for every runner",
    }
    document = run_record.record(rows, settings)
    print(table_of(document))
    if args.out is not None:
        stem = f"reference-eager-{args.encoder}{args.input_size}-{date.today().isoformat()}"
        write_results(args.out / f"{stem}.json", document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
