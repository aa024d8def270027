"""Candidate point pairs from a label map: points deep inside segments, pairs near and far.

As DA-2K: every point sits inside a segment, away from its edges (depth is
ambiguous on a boundary), and the two points of a pair lie on different segments.
Half the pairs join segments that touch ("near": the hard, local ordering), half
join segments far apart in the image ("far"). Which point is shown as point 1 is
balanced: in half the pairs it is the upper one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dav2_train.da2k.segments import interior_distance

NEAR, FAR = "near", "far"
FAR_MIN_FRACTION = 0.25  # "far": the points are at least this share of the diagonal apart


@dataclass(frozen=True)
class CandidatePair:
    point1: tuple[int, int]  # (row, col), as shown to a person
    point2: tuple[int, int]
    kind: str  # NEAR | FAR
    segments: tuple[int, int]


class _SegmentPoints:
    """Interior pixels of each segment, found once per image."""

    def __init__(self, labels: np.ndarray, margin_px: float) -> None:
        self.labels = labels
        self.distance = interior_distance(labels)
        flat = labels.ravel() + 1  # -1 (no segment) → 0
        count = int(flat.max()) + 1
        deepest = np.zeros(count, dtype=np.float32)
        np.maximum.at(deepest, flat, self.distance.ravel())
        deepest[0] = 0.0
        self.order = np.argsort(flat, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=count))])
        self.deepest = deepest
        # Segments a point can sit inside at least `margin_px` from every edge.
        self.eligible = np.nonzero(deepest >= margin_px)[0] - 1
        self.margin_px = margin_px
        self._inner: dict[int, np.ndarray] = {}  # segment → pixels a point may take

    def sample(self, segment: int, rng: np.random.Generator) -> tuple[int, int]:
        """A random pixel of ``segment`` well inside it.

        Small segments: the inner half (by distance to the edge); large ones (ground,
        sky, a wall): anywhere 3 margins from the edge, so points spread over them.
        """
        if segment not in self._inner:
            pixels = self.order[self.starts[segment + 1] : self.starts[segment + 2]]
            depth = self.distance.ravel()[pixels]
            deepest = float(self.deepest[segment + 1])
            floor = max(self.margin_px, min(0.5 * deepest, 3.0 * self.margin_px))
            self._inner[segment] = pixels[depth >= floor]
        chosen = int(rng.choice(self._inner[segment]))
        row, col = divmod(chosen, self.labels.shape[1])
        return row, col


def adjacent_segments(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs ``(a, b)``, ``a < b``, of segments that share an edge (4-neighbourhood)."""
    pairs = np.concatenate(
        [
            np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], axis=1),
            np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], axis=1),
        ]
    )
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    pairs = pairs[pairs[:, 0] >= 0]
    return {(int(a), int(b)) for a, b in np.unique(pairs, axis=0)}


def default_margin_px(height: int, width: int) -> float:
    return max(4.0, 0.03 * min(height, width))


def propose_pairs(
    labels: np.ndarray,
    count: int,
    rng: np.random.Generator,
    margin_px: float | None = None,
) -> list[CandidatePair]:
    """Up to ``count`` pairs on distinct segments, alternating near and far.

    Fewer come back when the image has too few segments a point fits inside (a
    blank wall); each segment pair is used once.
    """
    height, width = labels.shape
    margin = default_margin_px(height, width) if margin_px is None else margin_px
    points = _SegmentPoints(labels, margin)
    eligible = set(points.eligible.tolist())
    touching = [p for p in sorted(adjacent_segments(labels)) if set(p) <= eligible]
    far_px = FAR_MIN_FRACTION * float(np.hypot(height, width))
    used: set[tuple[int, int]] = set()
    uses = dict.fromkeys(eligible, 0)  # pairs per segment: spread pairs over many segments
    pairs: list[tuple[tuple[int, int], tuple[int, int], str, tuple[int, int]]] = []
    for attempt in range(count * 30):
        if len(pairs) >= count or len(eligible) < 2:
            break
        want = NEAR if len(pairs) % 2 == 0 else FAR
        if want == NEAR and not touching or attempt >= count * 20:
            want = FAR  # no touching segments left: fill with far pairs
        if want == NEAR:
            weights = np.array([1.0 / (1 + uses[a] + uses[b]) ** 2 for a, b in touching])
            a, b = touching[int(rng.choice(len(touching), p=weights / weights.sum()))]
        else:
            weights = np.array([1.0 / (1 + uses[s]) ** 2 for s in points.eligible.tolist()])
            choice = rng.choice(points.eligible, size=2, replace=False, p=weights / weights.sum())
            a, b = sorted(int(s) for s in choice)
        if (a, b) in used:
            continue
        pa, pb = points.sample(a, rng), points.sample(b, rng)
        if pa[0] == pb[0]:
            continue  # same row: neither is "upper", skip
        if want == FAR and ((a, b) in touching or np.hypot(pa[0] - pb[0], pa[1] - pb[1]) < far_px):
            continue
        used.add((a, b))
        uses[a], uses[b] = uses[a] + 1, uses[b] + 1
        pairs.append((pa, pb, want, (a, b)))
    # Balanced display order: point 1 is the upper point in half the pairs.
    upper_first = rng.permutation([i % 2 == 0 for i in range(len(pairs))])
    result = []
    for (pa, pb, kind, segments), first_is_upper in zip(pairs, upper_first, strict=True):
        upper, lower = (pa, pb) if pa[0] < pb[0] else (pb, pa)
        p1, p2 = (upper, lower) if first_is_upper else (lower, upper)
        result.append(CandidatePair(p1, p2, kind, segments))
    return result
