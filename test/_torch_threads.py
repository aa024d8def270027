"""Fixture for the heavy model tests: one torch thread.

On the shared 2-core machine a second OpenMP thread mostly spin-waits while other
processes hold the cores (measured up to 30x slower for ViT-Tiny); one thread is
never slower there. Import the fixture into a test module to apply it to that module.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
