"""``dav2-train da2k`` end to end on synthetic images with exact depth; a simulated person.

1. Renders ``--images`` frames with ``dav2_ros.sim`` (style b, rooms / streets /
   clutter in turn, each in a folder named after its kind, so the kind becomes the
   scene type), keeping the true depth.
2. Runs ``dav2-train da2k propose`` on them with two experts: by default the bundled
   model at input 84 and the same weights at input 42 (coarser views than its own input
   size, so the run is quick; two views of one model, not independently trained ones).
3. Plays the person: every queued pair is answered from the true depth (through the
   annotation queue and its journal), or skipped when the true depths are within 2 %.
4. Reports how many pairs were labelled automatically, how many of those agree with
   the true depth, how many went to the person, and scores each expert with
   ``dav2-train da2k evaluate`` on the finished ``annotations.json``.

Usage: .venv/bin/python bench/da2k_e2e.py --out bench/results   (writes da2k_e2e.json)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from _record import BenchRun, write_results
from dav2_train.da2k.annotations import read_annotations
from dav2_train.da2k.cli import main as da2k_main
from dav2_train.da2k.session import AnnotationSession, read_proposal

from dav2_ros.sim import SCENE_KINDS, make_scene, random_intrinsics, random_pose, render

SAME_DEPTH_RATIO = 1.02  # a person cannot order points whose depths differ by less


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--size", default="320x240", help="render size WxH")
    parser.add_argument("--pairs-per-image", type=int, default=8)
    parser.add_argument("--agree-margin", type=float, default=0.1)
    parser.add_argument("--experts", nargs="+", default=["bundled", "bundled"])
    parser.add_argument("--input-size", nargs="+", type=int, default=[84, 42])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/da2k_e2e"), help="scratch folder")
    parser.add_argument("--out", type=Path, default=None, help="folder for da2k_e2e.json")
    return parser.parse_args(argv)


def render_images(folder: Path, count: int, width: int, height: int, seed: int) -> dict:
    """``<kind>/<i>.png`` images; returns image key → true depth (metres, NaN = sky/far)."""
    depths = {}
    for i in range(count):
        kind = SCENE_KINDS[i % len(SCENE_KINDS)]
        rng = np.random.default_rng([seed, i])
        scene = make_scene(int(rng.integers(2**31)), "b", kind)
        frame = render(scene, random_intrinsics(rng, width, height), random_pose(scene, rng))
        key = f"{kind}/{i:04d}.png"
        (folder / kind).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / key), frame.rgb[..., ::-1])
        depths[key] = frame.depth_m
    return depths


def true_closer(depth_m: np.ndarray, point1: list[int], point2: list[int]) -> str | None:
    """ "point1"/"point2" from the true depth (sky and beyond range = infinitely far)."""
    d1, d2 = (float(depth_m[tuple(p)]) for p in (point1, point2))
    d1, d2 = (np.inf if np.isnan(d) else d for d in (d1, d2))
    if np.isinf(d1) and np.isinf(d2) or max(d1, d2) / min(d1, d2) < SAME_DEPTH_RATIO:
        return None
    return "point1" if d1 < d2 else "point2"


def evaluate(annotations: Path, expert: str, input_size: int) -> dict:
    """``dav2-train da2k evaluate`` (its ``main``, in this process: one torch start-up less)."""
    command = ["evaluate", "--annotations", str(annotations), "--checkpoint", expert]
    command += ["--input-size", str(input_size), "--threads", "1"]
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        code = da2k_main(command)
    if code != 0:
        raise SystemExit(f"da2k evaluate {' '.join(command)} failed with exit code {code}")
    last = report.getvalue().strip().splitlines()[-1]
    return {"expert": f"{expert}@{input_size}", "last_line": last, "report": report.getvalue()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_record = BenchRun(__file__, argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    images, proposal_dir = args.work / "images", args.work / "proposal"
    if args.work.exists():
        raise SystemExit(f"{args.work} exists; pass a new --work folder")
    started = time.perf_counter()
    depths = render_images(images, args.images, width, height, args.seed)
    render_s = time.perf_counter() - started

    propose = [sys.executable, "-m", "dav2_train.cli", "da2k", "propose", str(images)]
    propose += ["--out", str(proposal_dir), "--experts", *args.experts]
    propose += ["--input-size", *map(str, args.input_size), "--threads", "1"]
    propose += ["--pairs-per-image", str(args.pairs_per_image)]
    propose += ["--agree-margin", str(args.agree_margin), "--seed", str(args.seed)]
    started = time.perf_counter()
    subprocess.run(propose, check=True)
    propose_s = time.perf_counter() - started

    proposal = read_proposal(proposal_dir)
    key_of = {image: meta["key"] for image, meta in proposal["images"].items()}
    truth = {
        p["id"]: true_closer(depths[key_of[p["image"]]], p["point1"], p["point2"])
        for p in proposal["pairs"]
    }
    auto = [p for p in proposal["pairs"] if p["auto"] is not None]
    # The simulated person: every queued pair, in the page's order, through the journal.
    session = AnnotationSession(proposal_dir)
    while (pair := session.current()) is not None:
        session.answer(pair["id"], truth[pair["id"]] or "skip")
    session.close()

    annotations = read_annotations(proposal_dir / "annotations.json")
    final = [(image, label) for image, labels in annotations.items() for label in labels]
    final_agree = sum(
        true_closer(depths[key_of[image]], list(label.closer), list(label.farther)) == "point1"
        for image, label in final
    )
    lower_closer = sum(label.closer[0] > label.farther[0] for _, label in final)
    scores = [
        evaluate(proposal_dir / "annotations.json", expert, size)
        for expert, size in zip(args.experts, args.input_size, strict=True)
    ]
    queued = len(proposal["pairs"]) - len(auto)
    skipped = sum(truth[p["id"]] is None for p in proposal["pairs"] if p["auto"] is None)
    result = {
        "images": len(proposal["images"]),
        "pairs": len(proposal["pairs"]),
        "auto_labelled": len(auto),
        "auto_agree_with_truth": sum(p["auto"] == truth[p["id"]] for p in auto),
        "auto_true_depth_indistinct": sum(truth[p["id"]] is None for p in auto),
        "queued_for_person": queued,
        "person_answered": queued - skipped,
        "person_skipped": skipped,
        "final_pairs": len(final),
        "final_agree_with_truth": final_agree,
        "final_lower_point_closer": lower_closer,
        "experts_on_final_set": [{k: s[k] for k in ("expert", "last_line")} for s in scores],
        "seconds": {"render": round(render_s, 1), "propose": round(propose_s, 1)},
    }
    for score in scores:
        print(score["report"])
    print(json.dumps(result, indent=1))
    if args.out:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        settings["propose_command"] = " ".join(propose[2:])
        write_results(args.out / "da2k_e2e.json", run_record.record([result], settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
