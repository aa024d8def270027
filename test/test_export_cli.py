"""`dav2 export`: the files it writes load where users will load them."""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dav2_ros.cli import main
from dav2_ros.commands._model_args import build_model

ARGS = ["--random-weights", "--encoder", "vitt6", "--depth-type", "metric", "--max-depth", "10"]


@pytest.fixture(scope="module")
def reference_model():
    # The same deterministic random weights the command builds.
    args = argparse.Namespace(
        checkpoint=None, random_weights=True, encoder="vitt6", depth_type="metric", max_depth=10.0
    )
    return build_model(args, random_by_default=False).model


def test_onnx_export_for_a_camera_resolution_runs_in_onnxruntime(tmp_path, reference_model, capsys):
    output = tmp_path / "depth.onnx"
    # 224x168 camera, short side 126 → network 126x168.
    code = main(
        [
            "export",
            "--format",
            "onnx",
            "--output",
            str(output),
            "--input-size",
            "126",
            "--image-size",
            "224x168",
            *ARGS,
        ]
    )
    assert code == 0
    assert "trtexec --onnx=" in capsys.readouterr().err
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert image.name == "image" and image.shape == [1, 3, 126, 168]
    metadata = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert metadata["dav2.encoder"] == "vitt6" and metadata["dav2.depth_type"] == "metric"
    batch = np.random.default_rng(0).normal(size=(1, 3, 126, 168)).astype(np.float32)
    with torch.inference_mode():
        expected = reference_model(torch.from_numpy(batch)).numpy()
    (depth,) = session.run(["depth"], {"image": batch})
    assert np.linalg.norm(depth - expected) / np.linalg.norm(expected) < 1e-4
    assert not [p.name for p in tmp_path.iterdir() if p.name != "depth.onnx"]  # no temp files


def test_exported_program_loads_with_torch_export(tmp_path, reference_model):
    output = tmp_path / "depth.pt2"
    code = main(
        [
            "export",
            "--format",
            "exported-program",
            "--output",
            str(output),
            "--input-size",
            "126",
            *ARGS,
        ]
    )
    assert code == 0
    program = torch.export.load(str(output))
    x = torch.randn(1, 3, 126, 126, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(program.module()(x), reference_model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_tensorrt_export_without_cuda_names_what_is_missing(tmp_path, capsys):
    output = tmp_path / "depth.ep"
    code = main(["export", "--format", "tensorrt", "--output", str(output), *ARGS])
    assert code == 2
    assert "tensorrt backend needs a CUDA device" in capsys.readouterr().err
    assert not output.exists()


def test_bad_combinations_are_refused(tmp_path, capsys):
    code = main(
        [
            "export",
            "--format",
            "exported-program",
            "--quantize",
            "int8",
            "--output",
            str(tmp_path / "x.pt2"),
            *ARGS,
        ]
    )
    assert code == 2
    assert "--quantize applies to --format onnx only" in capsys.readouterr().err
