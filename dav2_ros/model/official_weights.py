"""The official Depth Anything V2 repositories on the Hugging Face hub, as data.

What each holds (encoder, relative or metric, max depth, the file or a Transformers
layout) and the licence its model card declares: Small is Apache-2.0; Base, Large
and Giant are CC-BY-NC-4.0 (dav2-reference.md). An official ``.pth`` cannot tell
relative from metric in its keys: loaded by name, the repository says it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ORGANISATION = "depth-anything"
APACHE = "Apache-2.0"
NON_COMMERCIAL = "CC-BY-NC-4.0"
# Hub licence ids are lower case; the project writes the SPDX spelling.
_SPDX_SPELLING = {"apache-2.0": APACHE, "cc-by-nc-4.0": NON_COMMERCIAL, "mit": "MIT"}
_SIZES = {"Small": "vits", "Base": "vitb", "Large": "vitl"}
_SIZE_LICENCES = {"Small": APACHE, "Base": NON_COMMERCIAL, "Large": NON_COMMERCIAL}
# Metric releases: .pth repositories name the training set, -hf ones the scene kind.
_METRIC_PTH = {"Hypersim": ("hypersim", 20.0), "VKITTI": ("vkitti", 80.0)}
_METRIC_HF = {"Indoor": 20.0, "Outdoor": 80.0}


@dataclass(frozen=True)
class OfficialRepo:
    """One official repository: what its weights are and under which licence."""

    repo_id: str
    encoder: str
    depth_type: str  # "relative" | "metric"
    max_depth_m: float | None  # metric repositories only
    licence: str
    filename: str | None  # the .pth in the repository; None: config.json + model.safetensors

    @property
    def name(self) -> str:
        """The ``hf:`` name that loads this repository's weights."""
        suffix = f"/{self.filename}" if self.filename else ""
        return f"hf:{self.repo_id}{suffix}"


def _official_repos() -> tuple[OfficialRepo, ...]:
    repos = []
    for size, encoder in _SIZES.items():
        licence = _SIZE_LICENCES[size]
        base = f"{ORGANISATION}/Depth-Anything-V2"
        file = f"depth_anything_v2_{encoder}.pth"
        repos.append(OfficialRepo(f"{base}-{size}", encoder, "relative", None, licence, file))
        repos.append(OfficialRepo(f"{base}-{size}-hf", encoder, "relative", None, licence, None))
        for dataset, (stem, metres) in _METRIC_PTH.items():
            file = f"depth_anything_v2_metric_{stem}_{encoder}.pth"
            repo = f"{base}-Metric-{dataset}-{size}"
            repos.append(OfficialRepo(repo, encoder, "metric", metres, licence, file))
        for scene, metres in _METRIC_HF.items():
            repo = f"{base}-Metric-{scene}-{size}-hf"
            repos.append(OfficialRepo(repo, encoder, "metric", metres, licence, None))
    return tuple(repos)


OFFICIAL_REPOS: tuple[OfficialRepo, ...] = _official_repos()
_BY_ID = {repo.repo_id.lower(): repo for repo in OFFICIAL_REPOS}


def official_repo(repo_id: str) -> OfficialRepo | None:
    """The official repository of this id (the hub's ids are case-insensitive), else None."""
    return _BY_ID.get(repo_id.lower())


def spdx_spelling(licence: str) -> str:
    """``cc-by-nc-4.0`` (a model card's id) → ``CC-BY-NC-4.0``; other ids as they are."""
    return _SPDX_SPELLING.get(licence.strip().lower(), licence.strip())


def is_non_commercial(licence: str | None) -> bool:
    """True for the Creative Commons NonCommercial family (``cc-by-nc-*``)."""
    return bool(licence) and re.search(r"(^|-)nc(-|$)", licence.lower()) is not None


def licence_notice(repo_id: str, licence: str | None) -> str:
    """The one line logged when weights are loaded or fetched by name."""
    if not licence:
        return (
            f"model licence: unknown ({repo_id}): its model card is not in the cache and it "
            f"is not an official Depth Anything V2 repository; read "
            f"https://huggingface.co/{repo_id} before use"
        )
    note = ": non-commercial" if is_non_commercial(licence) else ""
    return f"model licence: {licence} ({repo_id}){note}"
