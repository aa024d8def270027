"""Markdown tables of bench results, one function per bench (by the result's ``bench``).

Each function takes ``[(name, document), …]``: one or more result files of that bench in
the layout of ``bench/_record.py`` (``name`` is the file's stem, shown where several
files share a table). The bench scripts print their own run through these functions and
``bench/render_docs.py`` renders the docs' tables with them, so a table has one format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

Results = list[tuple[str, dict]]


def _load(document: dict) -> str:
    """The 1-minute load average over the run, e.g. ``5.3-6.1``."""
    load = document.get("load", {})
    values = [v for v in (load.get("avg_1m_start"), load.get("avg_1m_end")) if v is not None]
    if not values:
        return "?"
    low, high = min(values), max(values)
    return f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f}–{high:.1f}"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _each_row(
    results: Results, header: list[str], cells: Callable[[str, dict, dict], list[str]]
) -> str:
    """A table with one line per row of every result: ``cells(name, document, row)``."""
    return _grid(header, [cells(n, d, row) for n, d in results for row in d["rows"]])


def _f(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


# --- the node and its transport --------------------------------------------------------

HOT_PATH_STAGES = ["decode", "postprocess", "metric", "temporal", "depth build",
                   "depth/camera_info build", "points build", "publish"]  # fmt: skip


def node_hot_path(results: Results) -> str:
    """Per-stage p50 ms of the node's own work, one row per case."""
    header = ["result", "case", "load"]
    header += [s.replace("depth/camera_info", "camera_info") for s in HOT_PATH_STAGES]
    header += ["own work p50 (p90)", "own work min"]
    rows = []
    for name, document in results:
        for row in document["rows"]:
            node = row["node"]
            label = f"{row['size']} {'xyz+rgb' if row['color'] else 'xyz'} s{row['stride']}"
            rows.append(
                [name, label, _f(row["load_avg_1m"])]
                + [_f(node.get(stage)) for stage in HOT_PATH_STAGES]
                + [f"**{node['own_p50']:.1f}** ({node['own_p90']:.0f})", _f(node["own_min"])]
            )
    return _grid(header, rows)


def message_data(results: Results) -> str:
    """Per way of filling ``data``: ms to fill and to publish, per message and run."""
    header = ["result", "load", "way"]
    topics: list[str] = []
    for _, document in results:
        for row in document["rows"]:
            if row["topic"] not in topics:
                topics.append(row["topic"])
                header.append(f"`{row['topic']}` ({row['bytes'] / 1e6:.1f} MB): fill + publish")
    rows = []
    for name, document in results:
        ways: dict[str, dict[str, dict]] = {}
        for row in document["rows"]:
            ways.setdefault(row["way"], {})[row["topic"]] = row
        for way, by_topic in ways.items():
            cells = [
                f"{r['assign_ms']:.1f} + {r['publish_ms']:.1f} = {r['assign_plus_publish_ms']:.1f}"
                if (r := by_topic.get(topic))
                else "–"
                for topic in topics
            ]
            rows.append([name, _load(document), way, *cells])
    return _grid(header, rows)


def transport(results: Results) -> str:
    """Delivery to Fast DDS default readers with and without the shared-memory profile."""
    header = [
        "result", "load", "profile", "rate", "node published", "best-effort `depth`",
        "best-effort `points`", "reliable `depth` / `points`",
        "depth latency p50 − engine p50 (ms, best effort)", "node's own work p50 (ms)",
    ]  # fmt: skip
    rows = []
    for name, document in results:
        mode = document.get("settings", {}).get("publication_mode", "")
        label = name + (" (asynchronous)" if "ASYNC" in str(mode).upper() else "")
        for run in document["rows"]:
            depth, points = run["outputs"]["depth"], run["outputs"]["points"]
            rows.append(
                [
                    label,
                    _load(document),
                    run["profile"],
                    f"{run['rate_hz']:g} Hz",
                    str(depth["published"]),
                    f"{depth['best_effort']['received']} ({depth['best_effort']['share']:.0%})",
                    f"{points['best_effort']['received']} ({points['best_effort']['share']:.0%})",
                    f"{depth['reliable']['received']} / {points['reliable']['received']}",
                    f"{depth['best_effort']['latency_ms_p50']:.1f} − {run['engine_ms_p50']:.1f}"
                    f" = {depth['best_effort']['latency_minus_engine_ms_p50']:.1f}",
                    _f(run.get("node_work_ms_p50")),
                ]
            )
    return _grid(header, rows)


def soak(results: Results) -> str:
    header = [
        "result", "load", "minutes", "frames sent", "reached the node", "depth out (Hz)",
        "dropped as stale", "rejected / bad sent", "latency p50 / p99 (ms)",
        "RSS growth after warm-up", "exceptions", "SIGINT stop (s)",
    ]  # fmt: skip
    return _each_row(
        results,
        header,
        lambda name, document, r: [
            name,
            _load(document),
            f"{r['config']['minutes']:g}",
            str(r["frames_sent"]),
            str(r["frames_received_by_node"]),
            f"{r['depth_out']} ({r['output_rate_hz']:g})",
            str(r["frames_dropped_stale"]),
            f"{r['frames_rejected']} / {r['bad_frames_sent']}",
            f"{r['latency_ms']['p50']} / {r['latency_ms']['p99']}",
            f"{r['rss_growth_after_warmup_pct']:+.1f} %",
            str(sum(r["exceptions"].values())),
            f"{r['stop_s']:.2f}",
        ],
    )


def temporal(results: Results) -> str:
    header = ["model", "temporal", "flicker", "still", "moving", "AbsRel", "lag (frames)",
              "aligned"]  # fmt: skip
    return _each_row(
        results,
        header,
        lambda name, document, row: [
            row["label"],
            row["temporal"],
            *(f"{row['result'][k]:.4f}" for k in ("flicker", "flicker_still", "flicker_moving")),
            f"{row['result']['abs_rel']:.4f}",
            f"{row['result']['lag_frames']:.2g}",
            f"{row['result']['aligned_share']:.0%}",
        ],
    )


def demo(results: Results) -> str:
    """One column per run of ``dav2 demo`` (``bench/demo.py``), one row per figure."""
    figures: list[tuple[str, Callable[[dict, dict], str]]] = [
        ("model", lambda r, d: str(r["config"].get("checkpoint", "?"))),
        ("camera", lambda r, d: f"{r['config']['rate_hz']:g} Hz, {r['window_s']:.0f} s"),
        ("load", lambda r, d: _load(d)),
        ("frames in / out / scored", lambda r, d: f"{r['frames_in']} / {r['frames_out']} / "
         f"{r['frames_scored']}"),
        ("output fps", lambda r, d: f"{r['fps_out']:.2f}"),
        ("node's time a frame p50 (own work) → frames/s it can serve", _frame_time),
        ("engine time p50 (ms)", lambda r, d: _f(r["engine_ms"]["p50"])),
        ("latency p50 / p95 (ms)", lambda r, d: f"{r['latency_ms']['p50']:.1f} / "
         f"{r['latency_ms']['p95']:.1f}"),
        ("latency − engine (ms)", lambda r, d: _f(r.get("overhead_ms"))),
        ("metric AbsRel: model alone / with sparse fit", lambda r, d: _sparse(r, "abs_rel")),
        ("metric δ1: model alone / with sparse fit", lambda r, d: _sparse(r, "delta1")),
        ("frames withheld by the fit (fits accepted / rejected)", _withheld),
    ]  # fmt: skip
    header = ["", *(name for name, _ in results)]
    rows = []
    for label, cell in figures:
        cells = []
        for _, document in results:
            row = document["rows"][0]
            try:
                cells.append(cell(row, document))
            except (KeyError, TypeError, ValueError):
                cells.append("–")
        rows.append([label, *cells])
    return _grid(header, rows)


def _frame_time(row: dict, document: dict) -> str:
    """The node's ``frame_ms_p50``; where a run predates that field, the sum of its
    stages' p50s (marked so)."""
    diagnostics = row["node_diagnostics"]
    if "frame_ms_p50" in diagnostics:
        frame_ms, how = float(diagnostics["frame_ms_p50"]), ""
    else:
        frame_ms = sum(json.loads(diagnostics["stages_ms_p50"]).values())
        how = ", sum of stage p50s"
    own = f"{float(diagnostics['work_ms_p50']):.1f}" if "work_ms_p50" in diagnostics else "–"
    return f"{frame_ms:.1f} ms ({own}{how}) → {1000 / frame_ms:.1f}"


def _sparse(row: dict, key: str) -> str:
    sparse = row.get("sparse")
    if not sparse:
        return f"{row[key]:.3f} / –"
    alone = sparse["model_alone"].get(key)
    return f"{_f(alone, 3)} / **{sparse['with_sparse_fit'][key]:.3f}**"


def _withheld(row: dict, document: dict) -> str:
    sparse = row["sparse"]
    return f"{sparse['frames_withheld']} ({sparse['fits_accepted']} / {sparse['fits_rejected']})"


# --- engines -----------------------------------------------------------------------------


def run_matrix(results: Results) -> str:
    """Infer ms per backend, encoder and input size; int8's deviation from fp32."""
    blocks = []
    for _, document in results:
        records = document["rows"]
        accuracies = document.get("summary", {}).get("accuracy", {})
        by_case: dict[tuple, dict] = {}
        for r in records:
            by_case.setdefault((r["encoder"], r["input_size"]), {})[r["backend"]] = r
        backends = list(dict.fromkeys(r["backend"] for r in records))
        header = ["encoder", "input", "network"]
        header += [f"{b} infer ms (p90)" for b in backends]
        header += [f"torch / {b}" for b in backends if b != "torch"]
        header += ["int8 rel L2 / AbsRel"]
        rows = []
        for (encoder, size), runs in by_case.items():
            any_run = next(iter(runs.values()))
            row = [encoder, str(size), "x".join(map(str, reversed(any_run["input_hw"])))]
            row += [
                f"{runs[b]['infer_ms']:.0f} ({runs[b]['infer_p90_ms']:.0f})" if b in runs else "–"
                for b in backends
            ]
            for b in backends:
                if b != "torch":
                    ok = b in runs and "torch" in runs
                    ratio = runs["torch"]["infer_ms"] / runs[b]["infer_ms"] if ok else None
                    row.append(f"{ratio:.2f}×" if ratio else "–")
            checks = accuracies.get(f"{encoder}@{size}", {})
            acc = next((v for k, v in checks.items() if k.endswith("_vs_onnxruntime")), None)
            row.append(f"{acc['rel_l2']:.2%} / {acc['abs_rel']:.2%}" if acc else "–")
            rows.append(row)
        blocks.append(_grid(header, rows))
    return "\n".join(blocks)


def reference_eager(results: Results) -> str:
    header = ["runner", "infer ms", "reference / this", "torch backend / this",
              "rel L2 vs reference"]  # fmt: skip
    return _each_row(
        results,
        header,
        lambda name, document, row: [
            row["runner"],
            f"{row['infer_ms']:.0f}",
            f"{row['reference_over_this']:.2f}×",
            f"{row['torch_over_this']:.2f}×",
            f"{row['rel_l2_vs_reference']:.1e}",
        ],
    )


def cpu_engines(results: Results) -> str:
    """Per model and runner: ms a 640×480 frame, × the official infer_image, deviation,
    FLOP/s; then what auto chose and why."""
    header = ["model", "runner", "network", "frame ms (p90)", "× official infer_image",
              "deviation (rel. L2)", "GFLOP/s", "set-up s"]  # fmt: skip
    rows, choices = [], []
    for _, document in results:
        for r in document["rows"]:
            gflops = r["network_gflop"] / (r["frame_ms"] / 1e3)
            rows.append(
                [
                    r["model"],
                    f"**{r['runner']}**" if r["runner"].startswith("auto") else r["runner"],
                    "x".join(map(str, reversed(r["network_hw"]))),
                    f"{r['frame_ms']:.1f} ({r['frame_p90_ms']:.0f})",
                    f"{r['speedup_vs_official']:.2f}×",
                    f"{r['deviation']:.2%}",
                    f"{gflops:.0f}",
                    _f(r.get("setup_s")),
                ]
            )
            if r.get("engine_choice"):
                warm = r.get("auto_warm_setup_s")
                choices.append(
                    f"- {r['model']}: {r['engine_choice']} (first start {r['setup_s']:.1f} s, "
                    f"second start {warm:.1f} s)"
                )
    return _grid(header, rows) + ("\n" + "\n".join(choices) + "\n" if choices else "")


def cpu_peak(results: Results) -> str:
    """Measured peak per instruction kind and thread count."""
    header = ["kind", "instruction", "threads", "peak G-ops/s (FLOP; int8: multiply-adds x2)"]
    return _each_row(
        results,
        header,
        lambda name, document, r: [
            r["kind"],
            r["instruction"],
            str(r["threads"]),
            f"{r['gops_per_s']:.0f}",
        ],  # fmt: skip
    )


def openvino_profile(results: Results) -> str:
    """The layer types that take 95 % of each precision's time, with their kernels."""
    header = ["precision", "layer type", "layers", "ms a frame", "share", "kernels"]
    rows = []
    for _, document in results:
        covered: dict[str, float] = {}
        for r in document["rows"]:
            if covered.get(r["precision"], 0.0) >= 0.95:
                continue
            covered[r["precision"]] = covered.get(r["precision"], 0.0) + r["share"]
            rows.append(
                [
                    f"{r['precision']} ({r['frame_ms']:.0f} ms)",
                    r["layer_type"],
                    str(r["layers"]),
                    f"{r['ms']:.1f}",
                    f"{r['share']:.0%}",
                    ", ".join(r["kernels"]),
                ]  # fmt: skip
            )
    return _grid(header, rows)


def openvino_contention(results: Results) -> str:
    """Per case (processes sharing the cores, pinning): each process's frame ms."""
    header = ["processes × threads", "CPU pinning", "process", "frame ms p50", "p90", "max"]
    return _each_row(
        results,
        header,
        lambda name, document, r: [
            f"{r['processes']} × {document['settings']['threads']}",
            "on" if r["pinning"] else "off",
            str(r["process"]),
            f"{r['frame_ms_p50']:.0f}",
            f"{r['frame_ms_p90']:.0f}",
            f"{r['frame_ms_max']:.0f}",
        ],
    )


def self_check(results: Results) -> str:
    rows, frames = [], []
    for _, document in results:
        for row in document["rows"]:
            frames = frames or list(row["deviation"])
            rows.append(
                [row["model"], row["engine"], "x".join(map(str, reversed(row["input_hw"])))]
                + [f"{row['deviation'][name]:.2%}" for name in frames]
                + [f"{row['max_deviation_seen']:.2%}"]
            )
    return _grid(["model", "engine", "network", *frames, "worst"], rows)


def gpu_check(results: Results) -> str:
    header = ["result", "card", "step", "status", "seconds"]
    rows = []
    for name, document in results:
        card = document.get("settings", {}).get("card", "?")
        for step in document["rows"]:
            rows.append([name, card, step["step"], step["status"], str(step["seconds"])])
    return _grid(header, rows)


# --- metric scale --------------------------------------------------------------------------


def scale_recovery(results: Results) -> str:
    """Per prediction: the oracle, the estimator alone and what the node publishes."""
    header = [
        "prediction", "oracle AbsRel", "estimator alone, every frame (× oracle)",
        "as the node does: AbsRel (oracle on the same frames) × oracle",
        "plain least squares", "fixed a, b from frame 1", "frames with metric depth",
        "worst frame × oracle",
    ]  # fmt: skip
    rows = []
    for _, document in results:
        for r in document["rows"]:
            m = r["methods"]
            rows.append(
                [
                    r.get("model", r["source"]),
                    f"{m['oracle']['abs_rel']:.4f}",
                    f"{m['sparse_ungated']['abs_rel']:.4f} (**{r['estimator_over_oracle']:.3f}×**)",
                    f"{m['sparse']['abs_rel']:.4f} ({m['oracle_published']['abs_rel']:.4f}) "
                    f"**{r['sparse_over_oracle']:.3f}×**",
                    f"{m['naive_sparse']['abs_rel']:.4f}",
                    f"{m['fixed_first_frame']['abs_rel']:.4f}",
                    f"{r['frames_with_metric_depth']} / {r['frames']}",
                    f"{r['worst_frame_ratio']:.2f}×",
                ]
            )
    return _grid(header, rows)


# --- training ------------------------------------------------------------------------------


def train_memory(results: Results) -> str:
    header = ["images", "on disk (MiB)", "whole split in RAM per rank (MiB)",
              "peak RSS, training process (MiB)", "peak PSS, with its workers (MiB)"]  # fmt: skip
    return _each_row(
        results,
        header,
        lambda name, document, row: [
            f"{row['images']:,}",
            _f(row["on_disk_mib"], 0),
            _f(row["in_memory_design_mib"], 0),
            _f(row["peak_rss_main_mib"]),
            _f(row["peak_pss_with_workers_mib"]),
        ],
    )


def pseudo_label_throughput(results: Results) -> str:
    header = ["result", "threads", "load", "one by one (images/s)", "batches (images/s)",
              "batched / one by one"]  # fmt: skip
    rows = []
    for name, document in results:
        by_mode = {r["mode"]: r for r in document["rows"]}
        one, batched = by_mode["one_by_one"], by_mode["batched"]
        rows.append(
            [
                name,
                str(document["settings"]["threads"]),
                _load(document),
                f"{one['images_per_s']:.2f}",
                f"{batched['images_per_s']:.2f} (batch {batched['batch']})",
                f"**{batched['images_per_s'] / one['images_per_s']:.2f}×**",
            ]
        )
    return _grid(header, rows)


GPU_WORKLOADS = {
    "label_frames_vitl": "label {frames:,} frames with ViT-L",
    "train_student_vits": "ViT-S student, {student_steps:,} steps × batch {student_batch}",
    "finetune_metric_vits": "metric fine-tune, {finetune_steps:,} steps × batch {student_batch}",
    "paper_student_vits_480k_x_192": "for scale: the paper's ViT-S student, 480k × 192",
}


def train_step_time(results: Results) -> str:
    """GPU-hours implied by the measured FLOPs (assumed model-FLOPs utilisation)."""
    blocks = []
    for _, document in results:
        summary = document["summary"]
        gpus = list(summary["gpu_hours_estimate"])
        header = ["workload", "FLOPs", *(f"{gpu} (GPU-h)" for gpu in gpus)]
        rows = []
        for key, label in GPU_WORKLOADS.items():
            flops = summary["workload_flops"][key]
            rows.append(
                [label.format(**summary["workload"]), f"{flops:.1e}"]
                + [f"{summary['gpu_hours_estimate'][gpu][key]:g}" for gpu in gpus]
            )
        measured = {row["measurement"]: row for row in document["rows"]}
        student, teacher = measured["student_train_step"], measured["teacher_label_forward"]
        blocks.append(
            f"Measured on the CPU: a ViT-S student step at a {student['crop']}² crop, batch "
            f"{student['batch']}: {student['tflops']} TFLOP in {student['seconds']:g} s "
            f"({student['tflops'] / student['batch']:.3f} TFLOP a sample); a ViT-L labelling "
            f"pass on a {'×'.join(map(str, teacher['network_input']))} network input: "
            f"{teacher['tflops']} TFLOP in {teacher['seconds']:g} s. GPU-hours at "
            f"{summary['assumed_mfu']:.0%} model-FLOPs utilisation of the bf16 dense peak:\n\n"
            + _grid(header, rows)
        )
    return "\n".join(blocks)


def train_candidates(results: Results) -> str:
    """Inference ms per candidate (each pass), then seconds per training step."""
    blocks = []
    for name, document in results:
        speed = [r for r in document["rows"] if r["kind"] == "speed"]
        by_candidate: dict[str, list[dict]] = {}
        for r in speed:
            by_candidate.setdefault(r["candidate"], []).append(r)
        rows = [
            [
                candidate,
                "×".join(map(str, reversed(passes[0]["input_hw"]))),
                ", ".join(f"{p['total_ms']:.1f}" for p in passes),
                ", ".join(f"{p['load']:.1f}" for p in passes),
            ]
            for candidate, passes in by_candidate.items()
        ]
        blocks.append(f"`{name}`: `dav2 bench` total ms a 640×480 frame, 2 threads\n\n")
        blocks.append(
            _grid(["candidate", "network (640×480 →)", "total ms, each pass", "load"], rows)
        )
        train = [r for r in document["rows"] if r["kind"] == "train"]
        threads = list(dict.fromkeys(r["threads"] for r in train))
        encoders: dict[str, dict] = {}
        for r in train:
            encoders.setdefault(r["encoder"], {})[r["threads"]] = r
        rows = [
            [encoder, f"{next(iter(by_t.values()))['params_m']:g} M"]
            + [f"{by_t[t]['s_per_step']:.2f} (load {by_t[t]['load']:.1f})" for t in threads]
            for encoder, by_t in encoders.items()
        ]
        blocks.append(f"\n`{name}`: seconds per training step\n\n")
        blocks.append(
            _grid(["encoder", "params", *(f"s/step, {t} thread(s)" for t in threads)], rows)
        )
    return "\n".join(blocks)


def da2k_e2e(results: Results) -> str:
    header = ["images", "pairs", "labelled by the experts", "… agree with the true depth",
              "… true depths within 2 %", "queued for the person (answered / skipped)",
              "final pairs (agree with the true depth)", "experts on the final set"]  # fmt: skip
    rows = []
    for _, document in results:
        for r in document["rows"]:
            experts = "; ".join(
                f"{e['expert']}: {e['last_line'].removeprefix('pair accuracy: ')}"
                for e in r["experts_on_final_set"]
            )
            auto_share = r["auto_agree_with_truth"] / r["auto_labelled"]
            rows.append(
                [
                    str(r["images"]),
                    str(r["pairs"]),
                    f"**{r['auto_labelled']}**",
                    f"{r['auto_agree_with_truth']} ({auto_share:.0%})",
                    str(r["auto_true_depth_indistinct"]),
                    f"**{r['queued_for_person']}** "
                    f"({r['person_answered']} / {r['person_skipped']})",
                    f"{r['final_pairs']} ({r['final_agree_with_truth'] / r['final_pairs']:.0%})",
                    experts,
                ]
            )
    return _grid(header, rows)


def decode(results: Results) -> str:
    """Decode ms per image encoding (``image_to_rgb``), one column pair per result."""
    header, columns = ["encoding"], []
    for _, document in results:
        size = document["settings"].get("size", "?")
        header += [f"median ms ({size})", "p90 ms"]
        columns.append({r["encoding"]: r for r in document["rows"]})
    encodings = list(dict.fromkeys(e for column in columns for e in column))
    rows = [
        [f"`{e}`"] + [v for c in columns for v in (_f(c[e]["median_ms"], 2), _f(c[e]["p90_ms"], 2))]
        for e in encodings
    ]
    return _grid(header, rows)


def input_qos(results: Results) -> str:
    """Share of a stock camera's frames that reached the node, per camera and node QoS."""
    header = ["camera QoS", "camera's Fast DDS", "node input", "camera started", "rate",
              "size", "frames reaching the node"]  # fmt: skip
    rows = []
    for _, document in results:
        for r in document["rows"]:
            node_input = r["node_input"] or "auto (config/depth.yaml)"
            chosen = r["input_reliability"].split(";")[0].removeprefix("image: ").split(" (")[0]
            rows.append(
                [
                    r["camera"].replace("_", " "),
                    "shared-memory profile" if r["camera_profile"] else "default",
                    f"{node_input} → {chosen}" if not r["node_input"] else node_input,
                    "before the node" if r["camera_first"] else "after the node",
                    f"{r['rate_hz']:g} Hz",
                    r["size"],
                    f"{r['share']:.0%} ({r['received']} of {r['expected']})",
                ]
            )
    return _grid(header, rows)


def confidence_cost(results: Results) -> str:
    """Per-frame ms of each confidence case (``bench/confidence_cost.py``), with the ratio
    to the model without confidence in the same run."""
    header = ["case", "median ms", "p90 ms", "of which inference", "× without confidence", "load"]
    return _each_row(
        results,
        header,
        lambda _, d, r: [
            r["case"],
            _f(r["median_ms"]),
            _f(r["p90_ms"]),
            _f(r["infer_median_ms"]),
            f"{r['ratio_to_baseline']:.2f}",
            _load(d),
        ],
    )


TABLES: dict[str, Callable[[Results], str]] = {
    "input_qos": input_qos,
    "confidence_cost": confidence_cost,
    "decode": decode,
    "node_hot_path": node_hot_path,
    "message_data": message_data,
    "transport": transport,
    "soak": soak,
    "temporal": temporal,
    "demo": demo,
    "run_matrix": run_matrix,
    "reference_eager": reference_eager,
    "cpu_engines": cpu_engines,
    "cpu_peak": cpu_peak,
    "openvino_profile": openvino_profile,
    "openvino_contention": openvino_contention,
    "self_check": self_check,
    "gpu_check": gpu_check,
    "scale_recovery": scale_recovery,
    "train_memory": train_memory,
    "pseudo_label_throughput": pseudo_label_throughput,
    "train_step_time": train_step_time,
    "train_candidates": train_candidates,
    "da2k_e2e": da2k_e2e,
}


def table_of(document: dict, name: str = "this run") -> str:
    """The table of one result, as its bench script prints it after a run."""
    return TABLES[document["bench"]]([(name, document)])
