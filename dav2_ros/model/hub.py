"""Weights named ``hf:<owner>/<repo>[/<file in the repo>][@<revision>]``, found in the
Hugging Face cache.

A name with a file resolves to that file; a name without one to a Transformers-layout
repository (``config.json`` + ``model.safetensors``, the snapshot folder). Resolution is
cache-only unless a download is asked for (``dav2 fetch``, ``--download``,
``model.download``): a name missing from the cache fails at once, with no network call
(the cache is read with ``try_to_load_from_cache``, which opens no connection), and the
message says how to fetch it. The cache is huggingface_hub's own, so
``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` apply as for
every Hugging Face tool.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dav2_ros.model.official_weights import official_repo, spdx_spelling
from dav2_ros.model.tensor_files import CheckpointError

HUB_PREFIX = "hf:"
TRANSFORMERS_FILES = ("config.json", "model.safetensors")
MODEL_CARD = "README.md"  # its YAML front matter declares the licence
EXAMPLE = "hf:depth-anything/Depth-Anything-V2-Small/depth_anything_v2_vits.pth"
_FORM = f"hf:<owner>/<repo>[/<file in the repo>][@<revision>], e.g. {EXAMPLE}"


class HubError(CheckpointError):
    """Weights named on the hub cannot be found or fetched; the message says what to do."""


class HubNameError(HubError):
    """A malformed ``hf:`` name."""


class NotCachedError(HubError):
    """The name is valid but its files are not in the cache (and no download was asked)."""


@dataclass(frozen=True)
class HubName:
    repo_id: str  # owner/name
    filename: str | None  # path inside the repository; None: a Transformers layout
    revision: str | None  # branch, tag or commit; None: main

    def __str__(self) -> str:
        file = f"/{self.filename}" if self.filename else ""
        revision = f"@{self.revision}" if self.revision else ""
        return f"{HUB_PREFIX}{self.repo_id}{file}{revision}"

    @property
    def files(self) -> tuple[str, ...]:
        return (self.filename,) if self.filename else TRANSFORMERS_FILES


@dataclass(frozen=True)
class CachedWeights:
    """A name resolved in the cache: the file (or snapshot folder) and its commit."""

    name: HubName
    path: Path
    commit: str


def is_hub_name(value: object) -> bool:
    return isinstance(value, str) and value.startswith(HUB_PREFIX)


def parse_hub_name(text: str) -> HubName:
    """``hf:owner/repo[/file][@revision]`` → ``HubName``; ``HubNameError`` says what is wrong."""

    def refuse(why: str) -> HubNameError:
        return HubNameError(f"{text!r} is not a weights name: {why}; expected {_FORM}")

    if not is_hub_name(text):
        raise refuse(f"it does not start with {HUB_PREFIX!r}")
    body, at, revision = text[len(HUB_PREFIX) :].partition("@")
    if at and (not revision or "@" in revision or re.search(r"\s", revision)):
        raise refuse(f"the revision after '@' must be one word, got {revision!r}")
    parts = body.split("/")
    if len(parts) < 2:
        raise refuse("the repository id needs an owner and a name (owner/name)")
    repo_id = "/".join(parts[:2])
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise refuse(f"{repo_id!r} is not a repository id ({exc})") from None
    file_parts = parts[2:]
    if file_parts and any(part in ("", ".", "..") or part.isspace() for part in file_parts):
        raise refuse(f"the file part {'/'.join(file_parts)!r} has an empty, '.' or '..' segment")
    return HubName(repo_id, "/".join(file_parts) or None, revision or None)


def cache_dir() -> str:
    """The hub cache in use (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def resolve(name: HubName, download: bool = False) -> CachedWeights:
    """The cached files of ``name``; with ``download``, missing files are fetched first.

    Without ``download`` no network call is made: a miss raises ``NotCachedError``
    naming the command that fetches it. Cached files are used as they are (no update
    check), so a robot with its weights in the cache starts without a network.
    """
    _check_official_layout(name)
    try:
        return _collect(name, _from_cache)
    except NotCachedError:
        if not download:
            raise
    return fetch(name)


def fetch(name: HubName) -> CachedWeights:
    """Download (or update to the revision's latest commit) ``name`` into the cache, with
    huggingface_hub's progress bars; also its model card and, for a ``.safetensors``,
    the project's metadata ``<stem>.json`` beside it, where the repository has them."""
    _check_official_layout(name)
    weights = _collect(name, _download)
    companions = [MODEL_CARD]
    if name.filename and name.filename.endswith(".safetensors"):
        companions.append(name.filename[: -len(".safetensors")] + ".json")
    for filename in companions:
        _download_optional(name, filename, weights.commit)
    return weights


def declared_licence(weights: CachedWeights) -> str | None:
    """The licence the cached model card declares (``license:``), else the official
    repository's, else None. SPDX spelling (``CC-BY-NC-4.0``)."""
    import yaml
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.repocard import metadata_load

    card = try_to_load_from_cache(weights.name.repo_id, MODEL_CARD, revision=weights.commit)
    licence = None
    if isinstance(card, str):
        try:
            licence = (metadata_load(card) or {}).get("license")
        except (OSError, ValueError, yaml.YAMLError):  # an unreadable card says nothing
            licence = None
    if not licence:
        official = official_repo(weights.name.repo_id)
        licence = official.licence if official else None
    return spdx_spelling(str(licence)) if licence else None


# --- finding files --------------------------------------------------------------------


def _collect(name: HubName, get: Callable[[HubName, str, str | None], str]) -> CachedWeights:
    """Every file of ``name`` via ``get``; files after the first are pinned to its commit."""
    first = Path(get(name, name.files[0], name.revision))
    depth = len(PurePosixPath(name.files[0]).parts)
    commit = first.parts[-depth - 1]  # …/snapshots/<commit>/<file>
    for filename in name.files[1:]:
        get(name, filename, commit)
    return CachedWeights(name, first if name.filename else first.parent, commit)


def _from_cache(name: HubName, filename: str, revision: str | None) -> str:
    # try_to_load_from_cache only reads the cache. hf_hub_download(local_files_only=True)
    # would find the same file, but first builds request headers, and huggingface_hub 2.4
    # fetches {HF_ENDPOINT}/api/agent-harnesses for its user agent there (daily, 3 s
    # timeout) unless HF_HUB_OFFLINE is set: a network call on an offline robot.
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(name.repo_id, filename, revision=revision)
    if isinstance(found, str):  # else None, or the library's "known not to exist" marker
        return found
    at = f" at revision {name.revision}" if name.revision else ""
    raise NotCachedError(
        f"{name} is not in the Hugging Face cache {cache_dir()} ({filename}{at} is missing) "
        f"and nothing was downloaded. Fetch it once with `dav2 fetch {name}`, or allow the "
        "download where it is loaded: `--download` on dav2 commands, `model.download: true` "
        "for the node"
    )


def _download(name: HubName, filename: str, revision: str | None) -> str:
    import httpx2
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{name.repo_id} at revision {revision or 'main'}"
    try:
        # One request without retries first: an unreachable hub fails here at once,
        # where hf_hub_download backs off five times (about 23 s) before it gives up.
        get_hf_file_metadata(hf_hub_url(name.repo_id, filename, revision=revision))
        return hf_hub_download(name.repo_id, filename, revision=revision)
    except OfflineModeIsEnabled:
        raise HubError(
            f"cannot download {name}: downloads are off (HF_HUB_OFFLINE is set); unset "
            f"HF_HUB_OFFLINE to fetch it into {cache_dir()}"
        ) from None
    except GatedRepoError:
        raise HubError(
            f"cannot download {name}: {name.repo_id} is gated; accept its terms on "
            f"{constants.ENDPOINT}/{name.repo_id} and log in (`hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise HubError(
            f"cannot download {name}: no repository {name.repo_id} on {constants.ENDPOINT} "
            "(or it is private: log in with `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        message = f"cannot download {name}: {name.repo_id} has no revision {revision}"
        raise HubError(message) from None
    except RemoteEntryNotFoundError:
        raise HubError(f"cannot download {name}: {where} has no file {filename}") from None
    except HfHubHTTPError as exc:
        raise HubError(f"cannot download {name}: the hub refused it ({exc})") from None
    except (httpx2.TransportError, OSError) as exc:
        raise HubError(
            f"cannot download {name}: the Hugging Face hub at {constants.ENDPOINT} cannot be "
            f"reached ({exc}); check the network or HF_ENDPOINT. Nothing was downloaded"
        ) from None


def _download_optional(name: HubName, filename: str, commit: str) -> None:
    """A file the weights do without (model card, metadata): a repository without it is
    not an error (the licence then comes from the official table, or is unknown)."""
    import httpx2
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    with contextlib.suppress(HfHubHTTPError, httpx2.HTTPError, OSError):
        hf_hub_download(name.repo_id, filename, revision=commit)


def _check_official_layout(name: HubName) -> None:
    """An official repository named in the other layout: say which name loads it."""
    official = official_repo(name.repo_id)
    if official is None or (official.filename is None) == (name.filename is None):
        return
    if official.filename:
        what = f"holds the checkpoint {official.filename}, not a Transformers model"
    else:
        what = "is a Transformers repository (config.json + model.safetensors): name no file"
    revision = f"@{name.revision}" if name.revision else ""
    raise HubNameError(f"{name}: {official.repo_id} {what}; use {official.name}{revision}")
