"""Expert votes on a pair, the agreement rule, and a label-balanced choice of pairs.

Each expert's prediction is read as disparity (bigger = closer; a metric expert's
metres are inverted first). Its vote on a pair is the point with the larger
disparity; its margin is the relative disparity difference
``|d1 - d2| / max(d1, d2)`` in [0, 1] (for a metric expert that is
``1 - z_near / z_far``). A pair is labelled automatically only when every expert
votes the same way with a margin above ``agree_margin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from dav2_train.da2k.proposal import FAR, NEAR, CandidatePair


@dataclass(frozen=True)
class Vote:
    expert: str
    closer: str  # "point1" | "point2" (as the pair is shown)
    margin: float  # relative disparity difference, 0..1
    disparity: tuple[float, float]  # at point1, point2

    def to_json(self) -> dict:
        return asdict(self) | {"disparity": list(self.disparity)}


def cast_vote(disparity: np.ndarray, pair: CandidatePair, expert: str) -> Vote:
    d1 = float(disparity[pair.point1])
    d2 = float(disparity[pair.point2])
    largest = max(d1, d2)
    margin = abs(d1 - d2) / largest if largest > 0 else 0.0
    return Vote(expert, "point1" if d1 > d2 else "point2", round(margin, 6), (d1, d2))


def agreed_closer(votes: Sequence[Vote], agree_margin: float) -> str | None:
    """The unanimous answer when every margin exceeds ``agree_margin``, else None (a person)."""
    if len(votes) < 2:
        raise ValueError(f"agreement needs two or more experts, got {len(votes)}")
    answers = {v.closer for v in votes}
    if len(answers) == 1 and all(v.margin > agree_margin for v in votes):
        return answers.pop()
    return None


def consensus(votes: Sequence[Vote]) -> str:
    """The experts' pooled guess (mean signed margin), used only to balance the set."""
    signed = [v.margin if v.closer == "point1" else -v.margin for v in votes]
    return "point1" if float(np.mean(signed)) >= 0 else "point2"


def upper_is_closer(pair: CandidatePair, closer: str) -> bool:
    closer_point, other = (
        (pair.point1, pair.point2) if closer == "point1" else (pair.point2, pair.point1)
    )
    return closer_point[0] < other[0]


def select_balanced(
    pairs: Sequence[CandidatePair], votes: Sequence[Sequence[Vote]], count: int
) -> list[int]:
    """Indices of ``count`` pairs spread evenly over (near/far) × (upper/lower point closer).

    "Closer" is the experts' consensus here, so a "the lower point is closer" prior
    (the ground-plane guess) cannot score well on the set, as in DA-2K; a person
    still decides every pair the experts do not agree on.
    """
    buckets: dict[tuple[str, bool], list[int]] = {
        (kind, upper): [] for kind in (NEAR, FAR) for upper in (True, False)
    }
    for index, (pair, pair_votes) in enumerate(zip(pairs, votes, strict=True)):
        buckets[(pair.kind, upper_is_closer(pair, consensus(pair_votes)))].append(index)
    order = [(NEAR, True), (FAR, False), (NEAR, False), (FAR, True)]
    chosen: list[int] = []
    while len(chosen) < count and any(buckets.values()):
        for key in order:
            if buckets[key] and len(chosen) < count:
                chosen.append(buckets[key].pop(0))
    return sorted(chosen)
