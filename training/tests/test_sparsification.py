"""Sparsification curves and AUSE on rankings worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from dav2_train import sparsification as sp


def test_the_true_error_as_ranking_is_the_oracle_and_its_area_is_zero() -> None:
    errors = np.arange(50, dtype=np.float64)  # pixel i has error i
    oracle = sp.curve(errors, errors)
    # Removing 2 % (1 pixel, the worst: 49) leaves 0..48, mean 24; removing half leaves 0..24.
    assert oracle[0] == pytest.approx(24.5) and oracle[1] == pytest.approx(24.0)
    assert oracle[sp.KEEP50] == pytest.approx(12.0) and oracle[sp.KEEP80] == pytest.approx(19.5)
    assert sp.ause(oracle, oracle) == 0.0
    backwards = sp.curve(errors, -errors)  # the best pixels removed first
    assert backwards[sp.KEEP50] == pytest.approx(37.0)
    assert sp.ause(backwards, oracle) > 0


def test_ties_are_broken_at_random_not_by_position() -> None:
    errors = np.arange(1000, dtype=np.float64)  # the error grows along the flat index
    flat = sp.curve(errors, np.zeros(1000))
    # A positional order would remove the first (best) pixels and keep 500..999 (749.5).
    assert flat[sp.KEEP50] == pytest.approx(errors.mean(), rel=0.05)


def test_summary_gives_the_cut_at_half_from_the_mean_curves() -> None:
    errors = np.array([4.0, 3.0, 2.0, 1.0] * 25)
    rows = sp.frame_rows(errors, {sp.FAR: errors, sp.NEAR: -errors})
    summary = sp.summary(rows)
    assert set(summary) == {sp.ORACLE, sp.FAR, sp.NEAR}
    far = summary[sp.FAR]  # ranked by the true error: half removed leaves the 2s and 1s
    assert far["absrel_all"] == pytest.approx(2.5) and far["absrel_confident50"] == pytest.approx(
        1.5
    )
    assert far["cut50"] == pytest.approx(0.4) and far["ause"] == pytest.approx(0.0)
    assert summary[sp.NEAR]["cut50"] == pytest.approx(-0.4)
    assert set(sp.row_keys([sp.FAR, sp.NEAR])) == set(rows)  # what summing expects


def test_image_gradient_is_high_on_edges_and_zero_on_flat_regions() -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, 32:] = 255  # one vertical edge
    gradient = sp.image_gradient(rgb, (24, 32))
    assert gradient.shape == (48, 64)
    assert gradient[:, 30:34].min() > 0.5 and gradient[:, :20].max() == 0.0


def test_a_pooled_ranking_can_drop_a_bad_frame_that_each_frames_ranking_cannot() -> None:
    # Two frames: every pixel of the first is 10 % off, of the second 50 % off; the head
    # (a constant per frame) knows which frame is bad but nothing within a frame.
    good, bad = np.full(3200, 0.1), np.full(3200, 0.5)
    pool = sp.Pool()
    rows = []
    for seed, (errors, level) in enumerate([(good, 1.0), (bad, 2.0)]):
        ranked = {sp.HEAD: np.full(errors.size, level)}
        pool.add(errors, ranked, seed)
        rows.append(sp.frame_rows(errors, ranked, seed))
    means = {k: (rows[0][k] + rows[1][k]) / 2 for k in rows[0]}
    assert sp.summary(means)[sp.HEAD]["cut50"] == pytest.approx(0.0, abs=1e-9)
    pooled = pool.summary()[sp.HEAD]
    assert pooled["absrel_all"] == pytest.approx(0.3, rel=0.1)  # ~1/32 of each frame kept
    # The good frame is (about) the confident half: the random 1/32 differs by a few pixels.
    assert pooled["absrel_confident50"] < 0.15 and pooled["cut50"] > 0.5
    assert pool.merge([pool, sp.Pool()]).summary()[sp.HEAD]["cut50"] == pytest.approx(
        pooled["cut50"]
    )
