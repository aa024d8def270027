"""``bench/gpu_check.sh``, the prepared check for the first CUDA machine: what can be checked
without one. (Its steps' commands are the ones ``dav2 bench`` and ``bench/node_hot_path.py``
tests and runs use on CPU; the full script runs where a GPU is.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"


def test_gpu_check_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_gpu_check_passes_shellcheck() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_gpu_check_without_cuda_says_so_and_exits_77(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert result.returncode == 77, result.stdout + result.stderr
    assert "gpu_check: no CUDA GPU here, nothing to check" in result.stderr
    assert "sees no CUDA device" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
