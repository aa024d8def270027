"""da2k building blocks: segments → pairs, votes and agreement, the official format, the journal."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from dav2_train.da2k.annotations import (
    AnnotationError,
    PairLabel,
    read_annotations,
    read_scene_types,
    write_annotations,
)
from dav2_train.da2k.proposal import FAR, NEAR, CandidatePair, adjacent_segments, propose_pairs
from dav2_train.da2k.segments import felzenszwalb_segments, interior_distance, masks_to_labels
from dav2_train.da2k.session import (
    JOURNAL_NAME,
    PROPOSAL_FORMAT,
    PROPOSAL_NAME,
    AnnotationSession,
    AnswerRejected,
)
from dav2_train.da2k.voting import (
    Vote,
    agreed_closer,
    cast_vote,
    select_balanced,
    upper_is_closer,
)


def _grid_labels(rows: int = 4, cols: int = 5, cell: int = 40) -> np.ndarray:
    """A label map of rows × cols square segments of ``cell`` pixels."""
    r, c = np.indices((rows * cell, cols * cell))
    return ((r // cell) * cols + c // cell).astype(np.int32)


# -- segments and proposal -------------------------------------------------------------
def test_interior_distance_is_zero_on_edges_and_grows_inside() -> None:
    labels = _grid_labels(1, 2, 40)  # two 40×40 squares side by side
    distance = interior_distance(labels)
    assert distance[:, 39].max() == 0 and distance[:, 40].max() == 0  # the shared edge
    assert distance[0].max() == 0 and distance[:, 0].max() == 0  # image border
    assert distance[20, 20] == pytest.approx(19, abs=1.5)  # centre: ~19 px from every edge


def test_points_lie_inside_distinct_segments_away_from_edges() -> None:
    labels = _grid_labels()
    distance = interior_distance(labels)
    pairs = propose_pairs(labels, 12, np.random.default_rng(0), margin_px=6)
    assert len(pairs) == 12
    seen = set()
    for pair in pairs:
        segment1, segment2 = labels[pair.point1], labels[pair.point2]
        assert segment1 != segment2
        assert {segment1, segment2} == set(pair.segments)
        assert distance[pair.point1] >= 6 and distance[pair.point2] >= 6
        assert pair.point1[0] != pair.point2[0]  # one point is above the other
        seen.add(pair.segments)
    assert len(seen) == len(pairs)  # every segment pair once


def test_pairs_mix_touching_and_distant_segments() -> None:
    labels = _grid_labels()
    touching = adjacent_segments(labels)
    assert (0, 1) in touching and (0, 5) in touching and (0, 6) not in touching
    pairs = propose_pairs(labels, 12, np.random.default_rng(1), margin_px=6)
    kinds = [p.kind for p in pairs]
    assert kinds.count(NEAR) == kinds.count(FAR) == 6
    diagonal = np.hypot(*labels.shape)
    for pair in pairs:
        if pair.kind == NEAR:
            assert tuple(sorted(pair.segments)) in touching
        else:
            assert tuple(sorted(pair.segments)) not in touching
            assert np.hypot(*np.subtract(pair.point1, pair.point2)) >= 0.25 * diagonal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point1_is_the_upper_point_in_half_the_pairs(seed: int) -> None:
    pairs = propose_pairs(_grid_labels(), 10, np.random.default_rng(seed), margin_px=6)
    upper_first = sum(p.point1[0] < p.point2[0] for p in pairs)
    assert upper_first == 5


def test_a_blank_image_gives_no_pairs_and_a_photo_like_one_gives_some() -> None:
    assert propose_pairs(np.zeros((60, 80), np.int32), 8, np.random.default_rng(0)) == []
    rgb = np.full((120, 160, 3), 90, np.uint8)
    cv2.rectangle(rgb, (10, 10), (60, 50), (220, 40, 40), -1)
    cv2.circle(rgb, (120, 80), 25, (40, 200, 60), -1)
    rgb[90:, :] = (30, 30, 160)
    labels = felzenszwalb_segments(rgb)
    assert len(np.unique(labels)) >= 4
    assert len(propose_pairs(labels, 4, np.random.default_rng(0))) >= 2


def test_sam_masks_paint_small_over_large_and_leave_uncovered_pixels_out() -> None:
    big = np.zeros((20, 20), bool)
    big[:, :15] = True
    small = np.zeros((20, 20), bool)
    small[5:10, 5:10] = True
    labels = masks_to_labels(
        [{"segmentation": small, "area": 25}, {"segmentation": big, "area": 300}], (20, 20)
    )
    assert labels[7, 7] != labels[0, 0]  # the small mask stays visible on top
    assert (labels[:, 15:] == -1).all()
    assert interior_distance(labels)[:, 15:].max() == 0  # no points where no segment is


# -- votes and agreement ---------------------------------------------------------------
def _pair(p1=(10, 10), p2=(50, 10), kind=NEAR) -> CandidatePair:
    return CandidatePair(p1, p2, kind, (0, 1))


def test_vote_picks_the_larger_disparity_with_its_relative_margin() -> None:
    disparity = np.zeros((60, 20), np.float32)
    disparity[10, 10], disparity[50, 10] = 0.5, 0.4
    vote = cast_vote(disparity, _pair(), "a")
    assert vote.closer == "point1"
    assert vote.margin == pytest.approx(0.2)  # (0.5 - 0.4) / 0.5
    # A metric expert's metres are inverted first: 2 m vs 4 m → margin 1 - 2/4.
    depth_m = np.full((60, 20), 4.0, np.float32)
    depth_m[10, 10] = 2.0
    assert cast_vote(1.0 / depth_m, _pair(), "m").margin == pytest.approx(0.5)


def test_only_unanimous_votes_above_the_margin_are_labelled() -> None:
    def v(closer, margin):
        return Vote("e", closer, margin, (0.0, 0.0))

    assert agreed_closer([v("point1", 0.3), v("point1", 0.2)], 0.1) == "point1"
    assert agreed_closer([v("point2", 0.3), v("point2", 0.2)], 0.1) == "point2"
    assert agreed_closer([v("point1", 0.3), v("point2", 0.2)], 0.1) is None  # disagree
    assert agreed_closer([v("point1", 0.3), v("point1", 0.05)], 0.1) is None  # one unsure
    with pytest.raises(ValueError, match="two or more"):
        agreed_closer([v("point1", 0.3)], 0.1)


def test_selection_balances_upper_and_lower_closer_and_near_and_far() -> None:
    rng = np.random.default_rng(0)
    pairs, votes = [], []
    for i in range(40):
        kind = NEAR if i % 4 else FAR  # candidates skewed: 3/4 near
        pair = _pair((10 + i, 5), (80 + i, 5), kind)  # point1 is always the upper point
        # Experts mostly think the lower point is closer (the ground-plane layout).
        closer = "point1" if rng.random() < 0.3 else "point2"
        pairs.append(pair)
        votes.append([Vote("a", closer, 0.2, (0, 0)), Vote("b", closer, 0.3, (0, 0))])
    chosen = select_balanced(pairs, votes, 8)
    assert len(chosen) == 8 == len(set(chosen))
    upper = [upper_is_closer(pairs[i], votes[i][0].closer) for i in chosen]
    assert sum(upper) == 4
    assert sum(pairs[i].kind == NEAR for i in chosen) == 4


# -- the official format ---------------------------------------------------------------
OFFICIAL = {
    "images/indoor/kitchen.png": [
        {"point1": [10, 20], "point2": [30, 5], "closer_point": "point1"},
        {"point1": [3, 4], "point2": [40, 50], "closer_point": "point2"},
    ],
    "images/outdoor/street.jpg": [{"point1": [1, 2], "point2": [3, 4], "closer_point": "point1"}],
}


def test_a_fixture_in_the_official_layout_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "official" / "annotations.json"
    source.parent.mkdir()
    source.write_text(json.dumps(OFFICIAL))
    annotations = read_annotations(source)
    assert annotations["images/indoor/kitchen.png"][1] == PairLabel((40, 50), (3, 4))
    assert read_scene_types(annotations) == {
        "images/indoor/kitchen.png": "indoor",
        "images/outdoor/street.jpg": "outdoor",
    }
    copy = tmp_path / "copy.json"
    write_annotations(copy, annotations)
    written = json.loads(copy.read_text())
    assert set(written) == set(OFFICIAL)
    for image, pairs in written.items():
        for pair, original in zip(pairs, OFFICIAL[image], strict=True):
            assert set(pair) == {"point1", "point2", "closer_point"}
            assert pair["closer_point"] == "point1"  # ours: the closer point always first
            closer = original[original["closer_point"]]
            farther = original["point2" if original["closer_point"] == "point1" else "point1"]
            assert (pair["point1"], pair["point2"]) == (closer, farther)
    assert read_annotations(copy) == annotations


def test_a_sidecar_overrides_scene_types(tmp_path: Path) -> None:
    sidecar = tmp_path / "scenes.json"
    sidecar.write_text(json.dumps({"images/outdoor/street.jpg": "night"}))
    annotations = {image: [] for image in OFFICIAL} | {"a.png": []}
    scenes = read_scene_types(annotations, sidecar)
    assert scenes["images/outdoor/street.jpg"] == "night"
    assert scenes["images/indoor/kitchen.png"] == "indoor"
    assert scenes["a.png"] == "(none)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON file"),
        ("[1, 2]", "expected a JSON object mapping image paths"),
        ('{"a.png": {"point1": [1, 2]}}', "image 'a.png': expected a list of pairs"),
        ('{"a.png": [{"point1": [1, 2], "point2": [3, 4]}]}', "pair 0: missing closer_point"),
        (
            '{"a.png": [{"point1": [1.5, 2], "point2": [3, 4], "closer_point": "point1"}]}',
            r"pair 0: point1 must be \[row, col\] as two non-negative integers, found \[1.5, 2\]",
        ),
        (
            '{"a.png": [{"point1": [1, 2], "point2": [3, 4], "closer_point": "left"}]}',
            "closer_point must be 'point1' or 'point2', found 'left'",
        ),
    ],
)
def test_malformed_annotations_are_named_with_their_place(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "annotations.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=message) as info:
        read_annotations(path)
    assert str(path) in str(info.value)


# -- queue and journal -----------------------------------------------------------------
def _proposal_folder(tmp_path: Path) -> Path:
    pairs = [
        {
            "id": f"p{i}",
            "image": "images/a.png",
            "point1": [i, 1],
            "point2": [i + 10, 2],
            "kind": NEAR,
            "votes": [{"expert": "x", "closer": "point1", "margin": 0.3, "disparity": [2, 1]}],
            "auto": "point2" if i == 0 else None,
        }
        for i in range(5)
    ]
    proposal = {
        "format": PROPOSAL_FORMAT,
        "images": {"images/a.png": {"height": 20, "width": 5, "key": "a.png"}},
        "pairs": pairs,
    }
    (tmp_path / PROPOSAL_NAME).write_text(json.dumps(proposal))
    return tmp_path


def test_answers_skip_and_undo_survive_a_restart(tmp_path: Path) -> None:
    folder = _proposal_folder(tmp_path)
    session = AnnotationSession(folder)
    assert session.current()["id"] == "p1"  # p0 was labelled by the experts
    assert session.progress() == {"done": 0, "left": 4, "skipped": 0, "queued": 4, "auto": 1}
    answered = session.answer("p1", "point2")
    assert answered["votes"][0]["expert"] == "x"  # votes come back only with the answer
    session.answer("p1", "point2")  # a resent request changes nothing
    session.answer("p2", "skip")
    session.answer("p3", "point1")
    assert session.undo() == "p3"
    assert session.current()["id"] == "p3"
    with pytest.raises(AnswerRejected, match="already answered"):
        session.answer("p1", "point1")
    with pytest.raises(AnswerRejected, match="not in the annotation queue"):
        session.answer("p0", "point1")
    session.close()  # no shutdown step needed: every answer is already on disk

    resumed = AnnotationSession(folder)
    assert resumed.answers == {"p1": "point2", "p2": "skip"}
    assert resumed.current()["id"] == "p3"
    assert resumed.progress()["skipped"] == 1
    labels = read_annotations(folder / "annotations.json")["images/a.png"]
    # p0 (auto, point2 closer) and p1 (person, point2 closer); p2 skipped.
    assert labels == [PairLabel((10, 2), (0, 1)), PairLabel((11, 2), (1, 1))]
    resumed.close()


def test_a_line_torn_by_a_kill_is_dropped_and_the_journal_stays_usable(tmp_path: Path) -> None:
    folder = _proposal_folder(tmp_path)
    session = AnnotationSession(folder)
    session.answer("p1", "point1")
    session.close()
    with open(folder / JOURNAL_NAME, "a") as journal:
        journal.write('{"op": "answer", "pair": "p2", "clo')  # killed mid-write
    resumed = AnnotationSession(folder)
    assert resumed.answers == {"p1": "point1"}
    resumed.answer("p2", "point2")
    resumed.close()
    assert AnnotationSession(folder).answers == {"p1": "point1", "p2": "point2"}
