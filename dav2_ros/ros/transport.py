"""Which Fast DDS profile a process's DDS participant starts with (no rclpy: it must run
before ``rclpy.init``, when the participant reads its profile).

The bundled ``config/fastdds_large_data.xml`` gives the publisher a large shared-memory
segment, so best-effort readers on the same machine get every depth image and point cloud
(docs/transport.md). It is used only when the RMW is Fast DDS and the user has not
named a profile of their own; ``DAV2_FASTDDS_PROFILE=off`` turns it off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "dav2_ros"
PROFILE_FILE = "fastdds_large_data.xml"
SWITCH_VARIABLE = "DAV2_FASTDDS_PROFILE"
# Fast DDS 2.x (Humble, Jazzy) reads the first, 3.x the second; a user who set either has
# chosen their own profile.
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
# Fast DDS also loads these from the working directory when present.
WORKING_DIR_PROFILES = ("DEFAULT_FASTRTPS_PROFILES.xml", "DEFAULT_FASTDDS_PROFILES.xml")
FAST_DDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
SWITCH_OFF = ("off", "0", "false", "no")
SWITCH_ON = ("on", "1", "true", "yes", "auto", "")


@dataclass(frozen=True)
class ProfileChoice:
    """The profile to start with (None: leave Fast DDS's configuration alone) and why."""

    profile: Path | None
    reason: str
    warning: bool = False  # the reason is worth a WARN (a typo in the switch, a missing file)


def choose_profile(
    env: Mapping[str, str], bundled: Path | None, working_dir: Path | None = None
) -> ProfileChoice:
    """Decide from the environment alone; nothing is changed."""
    switch = env.get(SWITCH_VARIABLE, "").strip().lower()
    if switch in SWITCH_OFF:
        return ProfileChoice(None, f"not used ({SWITCH_VARIABLE}={env[SWITCH_VARIABLE]})")
    rmw = env.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and rmw not in FAST_DDS_RMWS:
        return ProfileChoice(None, f"not used: RMW_IMPLEMENTATION={rmw} is not Fast DDS")
    for variable in PROFILE_VARIABLES:
        if env.get(variable, "").strip():
            return ProfileChoice(None, f"not used: {variable}={env[variable]} names your own")
    for name in WORKING_DIR_PROFILES:
        if working_dir is not None and (working_dir / name).is_file():
            return ProfileChoice(None, f"not used: Fast DDS loads {name} from {working_dir}")
    if bundled is None:
        return ProfileChoice(
            None,
            f"not used: {PROFILE_FILE} is not installed (looked beside the package and in "
            f"share/{PACKAGE}/config); large messages travel as UDP fragments",
            warning=True,
        )
    typo = switch not in SWITCH_ON
    note = (
        f" ({SWITCH_VARIABLE}={env[SWITCH_VARIABLE]!r} is not one of "
        f"{'/'.join(SWITCH_ON[:-1])} or {'/'.join(SWITCH_OFF)}: treated as on)"
        if typo
        else ""
    )
    return ProfileChoice(
        bundled,
        f"{bundled} (shared memory for large messages; {SWITCH_VARIABLE}=off to disable){note}",
        warning=typo,
    )


def bundled_profile() -> Path | None:
    """The bundled profile: in the source checkout, else in the installed share directory."""
    checkout = Path(__file__).resolve().parents[2] / "config" / PROFILE_FILE
    if checkout.is_file():
        return checkout
    # A ROS 2 install (colcon) registers the share directory in the ament index; a pip
    # install puts setup.py's data_files under the interpreter's prefix.
    for share in (_ament_share_directory(), Path(sys.prefix) / "share" / PACKAGE):
        if share is not None and (share / "config" / PROFILE_FILE).is_file():
            return share / "config" / PROFILE_FILE
    return None


def _ament_share_directory() -> Path | None:
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH is not set
        return None


def use_large_data_profile(env: MutableMapping[str, str] | None = None) -> ProfileChoice:
    """Choose, and name the chosen profile in ``env`` (default ``os.environ``).

    Call before ``rclpy.init``: the participant reads the variables when it starts.
    """
    env = os.environ if env is None else env
    choice = choose_profile(env, bundled_profile(), Path.cwd())
    if choice.profile is not None:
        for variable in PROFILE_VARIABLES:
            env[variable] = str(choice.profile)
    return choice


def log_choice(logger: object, choice: ProfileChoice) -> None:
    """One line on ``logger`` (an rclpy or logging logger) saying what was chosen."""
    text = f"Fast DDS profile: {choice.reason}"
    if choice.warning:
        logger.warning(text)  # type: ignore[attr-defined]
    else:
        logger.info(text)  # type: ignore[attr-defined]
