"""Which weights a step's scores were made from, recorded beside the scores.

``evaluate`` and ``deploy-eval`` keep their earlier scores while their fingerprint holds,
and a fingerprint names a train section by its config and inputs: a section retrained
with the same config (after a code fix, say) keeps it. So the scores also record the
sha256 of each model's tensors as scored (``scored_weights.json``, label -> sha256).
Weights that differ from that record are scored again, and ``export`` puts no scores
made from other weights into a model card.
"""

from __future__ import annotations

import json
from pathlib import Path

FILE = "scored_weights.json"


class ScoredOtherWeights(ValueError):
    """Scores made from other weights than those they are about to be published with."""


def write(directory: Path, sha256_by_label: dict[str, str]) -> None:
    """Record the weights just scored; write it after the scores it vouches for."""
    (Path(directory) / FILE).write_text(json.dumps(sha256_by_label, indent=1, sort_keys=True))


def changes(directory: Path, sha256_by_label: dict[str, str]) -> list[str]:
    """How the weights scored in ``directory`` differ from ``sha256_by_label``, one line per
    model; empty when every model's weights are the ones scored."""
    path = Path(directory) / FILE
    if not path.is_file():
        return [f"no record of the weights scored ({FILE} is missing)"]
    recorded = json.loads(path.read_text())
    lines = []
    for label, sha256 in sha256_by_label.items():
        before = recorded.get(label)
        if before is None:
            lines.append(f"{label} was not scored before")
        elif before != sha256:
            lines.append(
                f"the weights of {label} changed since they were scored "
                f"(sha256 {before[:12]}… -> {sha256[:12]}…)"
            )
    return lines


def unchanged(directory: Path, sha256_by_label: dict[str, str], tag: str, main: bool) -> bool:
    """True when the scores in ``directory`` were made from these weights; otherwise the
    main rank (``main``) says which changed, and the caller scores them again."""
    changed = changes(directory, sha256_by_label)
    if changed and main:
        print(f"{tag} {'; '.join(changed)}: scoring again", flush=True)
    return not changed


def require_scored(directory: Path, label: str, sha256: str) -> None:
    """Raise ``ScoredOtherWeights`` unless ``label``'s scores in ``directory`` were made
    from the weights ``sha256``."""
    changed = changes(directory, {label: sha256})
    if changed:
        raise ScoredOtherWeights(
            f"the scores of {label} in {directory} are not of the weights exported: "
            f"{'; '.join(changed)}. Run `dav2-train evaluate` again (it scores changed "
            "weights again), then export"
        )
