"""`dav2-train da2k` end to end on synthetic images with exact depth (bench/da2k_e2e.py).

Experts: the bundled model at its input size 84 and the same weights at input 42.
The "person" answers every queued pair from the true depth, through the journal.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from dav2_train.da2k.annotations import read_annotations, read_scene_types

ROOT = Path(__file__).resolve().parents[2]


def test_propose_vote_annotate_evaluate_on_synthetic_images(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "da2k_e2e.py"), "--images", "3", "--size",
         "256x192", "--work", str(tmp_path / "work"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads((tmp_path / "da2k_e2e.json").read_text())
    assert document["bench"] == "da2k_e2e" and document["command"].startswith("python bench/")
    (report,) = document["rows"]
    assert report["images"] == 3
    # Every pair is either labelled by the experts or queued; both happen with these two.
    assert report["auto_labelled"] + report["queued_for_person"] == report["pairs"] >= 12
    assert report["auto_labelled"] > 0 and report["queued_for_person"] > 0
    assert report["person_answered"] + report["person_skipped"] == report["queued_for_person"]
    # The finished file holds the auto labels and the person's answers, closer point first:
    # the person's are all right, the experts' as right as the experts.
    assert report["final_pairs"] == report["auto_labelled"] + report["person_answered"]
    assert (
        report["final_agree_with_truth"]
        == report["auto_agree_with_truth"] + report["person_answered"]
    )
    assert report["auto_agree_with_truth"] >= 0.6 * report["auto_labelled"]
    for scored in report["experts_on_final_set"]:
        match = re.fullmatch(r"pair accuracy: (\d\.\d{3}) \((\d+) pairs\)", scored["last_line"])
        assert match, scored
        assert int(match[2]) == report["final_pairs"]
    annotations_path = tmp_path / "work" / "proposal" / "annotations.json"
    annotations = read_annotations(annotations_path)
    assert all((annotations_path.parent / image).is_file() for image in annotations)
    assert set(read_scene_types(annotations).values()) <= {"room", "street", "clutter"}
