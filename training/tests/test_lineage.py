"""The model card and export provenance come from the records of what ran."""

from __future__ import annotations

from dav2_train.export import model_card
from dav2_train.lineage import trace

from dav2_ros.model.checkpoints import ModelMeta

OFFICIAL = {
    "kind": "file",
    "path": "/models/depth_anything_v2_vitl.pth",
    "sha256": "ab" * 32,
    "format": "official",
    "encoder": "vitl",
    "depth_type": "relative",
    "max_depth": 20.0,
    "licence": "CC-BY-NC-4.0",
}


def _card(record: dict) -> str:
    lineage = trace(record)
    meta = ModelMeta("vits", "metric", 20.0, 518, provenance={"command": "dav2-train export"})
    return model_card(meta, lineage, {}, {}, "robot")


def test_a_model_without_training_history_gets_a_card() -> None:
    card = _card(OFFICIAL)  # exporting a file as it is: no steps, no data
    assert "exported from official checkpoint `/models/depth_anything_v2_vitl.pth`" in card
    assert "none recorded" in card and "(evaluate did not run)" in card
    assert "CC-BY-NC-4.0" in card
    bare_section = {"kind": "section", "section": "student", "provenance": {}}
    card = _card(bare_section)  # a section whose record lacks every field
    assert "`student` started from random initialisation" in card and "loss ? → ?" in card


def test_the_card_follows_init_and_teacher_records() -> None:
    student = {
        "kind": "section",
        "section": "student",
        "provenance": {
            "section": "student",
            "command": "student",
            "encoder": "vits",
            "steps": 100,
            "batch_size": 8,
            "accumulate": 2,
            "world_size": 4,
            "first_loss": 2.0,
            "last_loss": 0.5,
            "init": {
                "kind": "dinov2-encoder",
                "path": "/models/dinov2_vits14_pretrain.pth",
                "sha256": "cd" * 32,
                "tensors_loaded": 175,
                "tensors_expected": 175,
            },
            "data": [
                {
                    "split": "robot_pseudo",
                    "kind": "disparity",
                    "samples": 900,
                    "provenance": {
                        "source": "pseudo-label",
                        "teacher": OFFICIAL,
                        "frames": 900,
                        "label": "relative disparity",
                        "sources": [
                            {"path": "/bags/yard.mcap", "topic": "/front/image", "every": 3}
                        ],
                    },
                }
            ],
        },
    }
    metric = {
        "kind": "section",
        "section": "metric",
        "provenance": {
            "section": "metric",
            "command": "finetune-metric",
            "encoder": "vits",
            "init": student,
            "data": [
                {
                    "split": "rgbd",
                    "provenance": {
                        "source": "rgbd",
                        "pairs": 40,
                        "path": "/bags/rgbd",
                        "image_topic": "/cam/image",
                        "depth_topic": "/cam/depth",
                    },
                }
            ],
        },
    }
    lineage = trace(metric)
    assert lineage.initialisation == [
        "`metric` started from section `student` of this run",
        "`student` started from DINOv2 encoder `/models/dinov2_vits14_pretrain.pth` "
        "(sha256 cdcdcdcdcdcd…; 175/175 encoder tensors loaded, head fresh)",
    ]
    assert any(
        "900 unlabelled frames from `/bags/yard.mcap`, topic `/front/image`, 1 frame in 3" in line
        for line in lineage.data_sources
    )
    assert any("40 RGB-D pairs from `/bags/rgbd`" in line for line in lineage.data_sources)
    assert lineage.teachers == [
        "official checkpoint `/models/depth_anything_v2_vitl.pth` (vitl, relative, "
        "sha256 abababababab…)"
    ]
    assert any(
        "100 steps × batch 8 × accumulate 2 × 4 process(es), loss 2.0000 → 0.5000" in line
        for line in lineage.steps
    )
    assert lineage.licences == [
        "official checkpoint `/models/depth_anything_v2_vitl.pth` (vitl, relative, "
        "sha256 abababababab…): CC-BY-NC-4.0"
    ]
