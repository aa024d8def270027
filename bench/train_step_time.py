"""Measured step times on this CPU, and the GPU-hours they imply for a robot team's run.

Measured (random weights; time does not depend on them), fp32, ``--threads`` threads:
- student training step: ViT-S, 518×518 crop, batch ``--batch``: forward, relative
  loss, backward, AdamW step (what ``dav2-train student`` does per micro-batch);
- teacher labelling: ViT-L forward on one 640×480 frame (network 518×686), as
  ``pseudo-label`` runs an official Large.
FLOPs: ``torch.utils.flop_counter`` for convolutions and matmuls, plus attention
(4·N²·D per block forward, ×3 with backward), which the counter misses on the CPU.

Extrapolation to a GPU: FLOPs ÷ (bf16 dense peak × an assumed model-FLOPs utilisation,
``--mfu``); the CPU's own achieved FLOP/s are reported beside for scale. The
workload is docs/training.md's: ``--frames`` frames labelled by ViT-L, a ViT-S student for
``--steps`` × ``--student-batch``; the paper's students (480K × 192) for reference.

Usage: .venv/bin/python bench/train_step_time.py [--threads 2] [--batch 2]
       [--out bench/results/train_step_time.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from _record import BenchRun, write_results
from dav2_train.losses import relative_loss
from tables import table_of
from torch.utils.flop_counter import FlopCounterMode

from dav2_ros.model import DepthAnythingV2, get_encoder_spec
from dav2_ros.model.random_weights import randomize_weights_

GPUS_BF16_DENSE_TFLOPS = {"A100": 312.0, "H100 SXM": 989.0, "L40S": 362.0}


def attention_flops(encoder: str, height: int, width: int, batch: int) -> float:
    spec = get_encoder_spec(encoder)
    tokens = (height // 14) * (width // 14) + 1
    return 4.0 * tokens**2 * spec.embed_dim * spec.depth * batch


def student_step(encoder: str, size: int, batch: int) -> dict:
    model = randomize_weights_(DepthAnythingV2(encoder, "relative"), seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    image = torch.randn(batch, 3, size, size)
    target = torch.rand(batch, size, size) + 0.1
    mask = torch.ones_like(target, dtype=torch.bool)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        relative_loss(model(image), target, mask, 2.0, 0.1).backward()
        optimizer.step()

    step()  # warm-up (allocations, Adam state)
    with FlopCounterMode(display=False) as counter:
        started = time.perf_counter()
        step()
        seconds = time.perf_counter() - started
    flops = counter.get_total_flops() + 3 * attention_flops(encoder, size, size, batch)
    return {
        "encoder": encoder,
        "crop": size,
        "batch": batch,
        "seconds": round(seconds, 2),
        "tflops": round(flops / 1e12, 3),
    }


def teacher_forward(encoder: str, height: int, width: int) -> dict:
    model = randomize_weights_(DepthAnythingV2(encoder, "relative"), seed=0).eval()
    image = torch.randn(1, 3, height, width)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        started = time.perf_counter()
        model(image)
        seconds = time.perf_counter() - started
    flops = counter.get_total_flops() + attention_flops(encoder, height, width, 1)
    return {
        "encoder": encoder,
        "network_input": [height, width],
        "seconds": round(seconds, 2),
        "tflops": round(flops / 1e12, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--mfu", type=float, default=0.35, help="assumed GPU utilisation")
    parser.add_argument("--frames", type=int, default=100_000, help="frames to label")
    parser.add_argument("--steps", type=int, default=40_000, help="student steps")
    parser.add_argument("--student-batch", type=int, default=64)
    parser.add_argument("--finetune-steps", type=int, default=10_000)
    parser.add_argument(
        "--reuse", type=Path, help="take the measurements from this earlier JSON, re-estimate"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_step_time.json"))
    args = parser.parse_args(argv)
    run_record = BenchRun(__file__, argv)
    torch.set_num_threads(args.threads)
    measured_by = None
    if args.reuse:
        earlier = json.loads(args.reuse.read_text())
        by_name = {row["measurement"]: row for row in earlier["rows"]}
        student, teacher = by_name["student_train_step"], by_name["teacher_label_forward"]
        args.batch = student["batch"]
        measured_by = f"{earlier['command']} (on {earlier['machine']['cpu']}, {earlier['date']})"
    else:
        student = {"measurement": "student_train_step", **student_step("vits", 518, args.batch)}
        print(json.dumps(student), flush=True)
        teacher = {"measurement": "teacher_label_forward", **teacher_forward("vitl", 518, 686)}
        print(json.dumps(teacher), flush=True)

    per_sample_train = student["tflops"] * 1e12 / args.batch
    per_frame_label = teacher["tflops"] * 1e12
    workloads = {
        "label_frames_vitl": args.frames * per_frame_label,
        "train_student_vits": args.steps * args.student_batch * per_sample_train,
        "finetune_metric_vits": args.finetune_steps * args.student_batch * per_sample_train,
        "paper_student_vits_480k_x_192": 480_000 * 192 * per_sample_train,
    }
    cpu = {
        "student_step_gflops_per_s": round(student["tflops"] * 1e3 / student["seconds"], 1),
        "teacher_forward_gflops_per_s": round(teacher["tflops"] * 1e3 / teacher["seconds"], 1),
    }
    estimate = {
        gpu: {
            name: round(flops / (peak * 1e12 * args.mfu) / 3600, 1)
            for name, flops in workloads.items()
        }
        for gpu, peak in GPUS_BF16_DENSE_TFLOPS.items()
    }
    cpu_hours = {
        "label_frames_vitl": round(args.frames * teacher["seconds"] / 3600, 1),
        "train_student_vits": round(
            args.steps * args.student_batch / args.batch * student["seconds"] / 3600, 1
        ),
    }
    settings = {"threads": args.threads, "measured_by": measured_by or "this run"}
    summary = {
        "cpu_achieved": cpu,
        "workload": {
            "frames": args.frames,
            "student_steps": args.steps,
            "finetune_steps": args.finetune_steps,
            "student_batch": args.student_batch,
        },
        "workload_flops": workloads,
        "assumed_mfu": args.mfu,
        "gpu_bf16_dense_tflops": GPUS_BF16_DENSE_TFLOPS,
        "gpu_hours_estimate": estimate,
        "this_cpu_hours": cpu_hours,
    }
    document = run_record.record([student, teacher], settings, summary)
    write_results(args.out, document)
    print(table_of(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
