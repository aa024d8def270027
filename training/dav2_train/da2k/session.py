"""The annotation queue of one ``propose`` folder and the journal of a person's answers.

Folder layout (written by ``propose``)::

    proposal.json     every pair as shown (point1/point2), its votes, its auto label or null
    annotations.json  official DA-2K file: auto labels + the person's answers so far
    images/           the images the pairs refer to
    journal.jsonl     one line per answer or undo, appended and fsynced before the reply

The journal is the record: state = proposal + replay of the journal, so a killed
server loses nothing it acknowledged, and a restart resumes at the first pair
without an answer. ``annotations.json`` is rebuilt from that state after every
answer (atomically).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from dav2_train.da2k.annotations import Annotations, PairLabel, write_annotations

PROPOSAL_NAME = "proposal.json"
JOURNAL_NAME = "journal.jsonl"
ANNOTATIONS_NAME = "annotations.json"
PROPOSAL_FORMAT = "dav2-da2k-proposal/1"
ANSWERS = ("point1", "point2", "skip")


class SessionError(ValueError):
    """A proposal folder or journal that cannot be used; the message says what to do."""


class AnswerRejected(ValueError):
    """An answer the queue cannot take (unknown pair, already answered otherwise, …)."""


class Journal:
    """Append-only JSON lines, each flushed and fsynced before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = self._read()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the session

    def _read(self) -> list[dict]:
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        complete, _, torn = text.rpartition("\n")
        if torn:
            # A line cut by a kill mid-write was never acknowledged: drop it so the next
            # append starts on a line of its own.
            print(f"journal {self.path}: dropping an incomplete last line ({len(torn)} bytes)")
            with open(self.path, "r+", encoding="utf-8") as file:
                file.truncate(len(complete.encode("utf-8")) + (1 if complete else 0))
        records = []
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SessionError(
                    f"{self.path}, line {number}: not a JSON record ({exc}); the journal was "
                    "edited or damaged: fix or remove that line"
                ) from None
        return records

    def append(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records.append(record)

    def close(self) -> None:
        self._file.close()


def read_proposal(folder: Path) -> dict[str, Any]:
    path = folder / PROPOSAL_NAME
    if not path.is_file():
        raise SessionError(
            f"{folder}: no {PROPOSAL_NAME} here; run `dav2-train da2k propose --out {folder} ...` "
            "first"
        )
    try:
        proposal = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SessionError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(proposal, dict) or proposal.get("format") != PROPOSAL_FORMAT:
        raise SessionError(f"{path}: not a `da2k propose` file (format {PROPOSAL_FORMAT})")
    return proposal


class AnnotationSession:
    """The queue of pairs the experts did not agree on, with the person's answers."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.proposal = read_proposal(self.folder)
        self.pairs = {pair["id"]: pair for pair in self.proposal["pairs"]}
        self.queue = [pair["id"] for pair in self.proposal["pairs"] if pair["auto"] is None]
        self.answers: dict[str, str] = {}
        self.history: list[str] = []  # answered pair ids, oldest first (undo pops the last)
        self.journal = Journal(self.folder / JOURNAL_NAME)
        for number, record in enumerate(self.journal.records, start=1):
            try:
                self._apply(record)
            except (AnswerRejected, KeyError) as exc:
                raise SessionError(
                    f"{self.journal.path}, line {number}: {exc}; it does not belong to this "
                    f"{PROPOSAL_NAME} (was the proposal made again?): move the journal away"
                ) from None

    # -- state ------------------------------------------------------------------------
    def current(self) -> dict | None:
        """The next pair to show (without its votes), or None when the queue is done."""
        for pair_id in self.queue:
            if pair_id not in self.answers:
                pair = self.pairs[pair_id]
                image = self.proposal["images"][pair["image"]]
                return {
                    "id": pair_id,
                    "image": pair["image"],
                    "point1": pair["point1"],
                    "point2": pair["point2"],
                    "height": image["height"],
                    "width": image["width"],
                }
        return None

    def progress(self) -> dict[str, int]:
        skipped = sum(answer == "skip" for answer in self.answers.values())
        return {
            "done": len(self.answers),
            "left": len(self.queue) - len(self.answers),
            "skipped": skipped,
            "queued": len(self.queue),
            "auto": len(self.pairs) - len(self.queue),
        }

    def annotations(self) -> Annotations:
        """Official DA-2K content: auto labels and the person's answers (not skips)."""
        result: Annotations = {image: [] for image in self.proposal["images"]}
        for pair in self.proposal["pairs"]:
            closer = pair["auto"] or self.answers.get(pair["id"])
            if closer in ("point1", "point2"):
                p1, p2 = tuple(pair["point1"]), tuple(pair["point2"])
                label = PairLabel(p1, p2) if closer == "point1" else PairLabel(p2, p1)
                result[pair["image"]].append(label)
        return {image: labels for image, labels in result.items() if labels}

    # -- changes (journal first, then memory, then the output file) ---------------------
    def answer(self, pair_id: str, closer: str) -> dict:
        """Record ``closer`` (point1, point2 or skip) for a queued pair; returns its votes."""
        record = {"op": "answer", "pair": pair_id, "closer": closer, "time": time.time()}
        if self._check_answer(pair_id, closer):
            self.journal.append(record)
            self._apply(record)
            self.save()
        return {"id": pair_id, "closer": closer, "votes": self.pairs[pair_id]["votes"]}

    def undo(self) -> str | None:
        """Forget the last answer; its pair is shown again. None when nothing to undo."""
        if not self.history:
            return None
        record = {"op": "undo", "pair": self.history[-1], "time": time.time()}
        self.journal.append(record)
        self._apply(record)
        self.save()
        return record["pair"]

    def save(self) -> None:
        write_annotations(self.folder / ANNOTATIONS_NAME, self.annotations())

    def close(self) -> None:
        self.journal.close()

    def _check_answer(self, pair_id: str, closer: str) -> bool:
        """True for a new answer, False for a repeat of the same one (a resent request)."""
        if closer not in ANSWERS:
            raise AnswerRejected(f"answer must be one of {', '.join(ANSWERS)}, got {closer!r}")
        if pair_id not in self.pairs or self.pairs[pair_id]["auto"] is not None:
            raise AnswerRejected(f"pair {pair_id!r} is not in the annotation queue")
        previous = self.answers.get(pair_id)
        if previous is not None and previous != closer:
            raise AnswerRejected(
                f"pair {pair_id!r} is already answered ({previous}); undo it first"
            )
        return previous is None

    def _apply(self, record: dict) -> None:
        if record["op"] == "answer":
            if self._check_answer(record["pair"], record["closer"]):
                self.answers[record["pair"]] = record["closer"]
                self.history.append(record["pair"])
        elif record["op"] == "undo":
            if not self.history or self.history[-1] != record["pair"]:
                raise AnswerRejected(f"undo of {record['pair']!r}, which is not the last answer")
            del self.answers[self.history.pop()]
        else:
            raise AnswerRejected(f"unknown journal operation {record['op']!r}")
