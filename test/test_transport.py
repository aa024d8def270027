"""The Fast DDS profile choice (``dav2_ros.ros.transport``) and the shipped profile itself.

Pure checks; ``test_ros_transport.py`` shows the profile at work in a real node.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dav2_ros.ros import transport
from dav2_ros.ros.transport import choose_profile, use_large_data_profile

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "config" / transport.PROFILE_FILE
NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
# The largest message the node sends: a 1280x720 xyz+rgb cloud (32 bytes a point).
LARGEST_MESSAGE_BYTES = 1280 * 720 * 32


def test_bundled_profile_is_found_in_the_source_checkout() -> None:
    assert transport.bundled_profile() == PROFILE


@pytest.mark.parametrize("rmw", ["", "rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"])
def test_profile_is_used_with_fast_dds_when_no_profile_is_named(rmw: str) -> None:
    choice = choose_profile({"RMW_IMPLEMENTATION": rmw}, PROFILE)
    assert choice.profile == PROFILE and not choice.warning
    assert "DAV2_FASTDDS_PROFILE=off to disable" in choice.reason


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DAV2_FASTDDS_PROFILE": "off"}, "not used (DAV2_FASTDDS_PROFILE=off)"),
        ({"DAV2_FASTDDS_PROFILE": "0"}, "not used (DAV2_FASTDDS_PROFILE=0)"),
        ({"DAV2_FASTDDS_PROFILE": "False"}, "not used (DAV2_FASTDDS_PROFILE=False)"),
        ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "rmw_cyclonedds_cpp is not Fast DDS"),
        ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, "=/etc/mine.xml names your own"),
        ({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, "=/etc/mine.xml names your own"),
    ],
)
def test_profile_is_left_out_when_switched_off_or_not_ours_to_choose(
    env: dict[str, str], reason: str
) -> None:
    choice = choose_profile(env, PROFILE)
    assert choice.profile is None and not choice.warning
    assert reason in choice.reason


def test_a_profile_file_in_the_working_directory_counts_as_the_users(tmp_path: Path) -> None:
    (tmp_path / "DEFAULT_FASTRTPS_PROFILES.xml").write_text("<dds/>")
    choice = choose_profile({}, PROFILE, working_dir=tmp_path)
    assert choice.profile is None
    assert f"loads DEFAULT_FASTRTPS_PROFILES.xml from {tmp_path}" in choice.reason


def test_a_typo_in_the_switch_keeps_the_profile_and_says_so() -> None:
    choice = choose_profile({"DAV2_FASTDDS_PROFILE": "of"}, PROFILE)
    assert choice.profile == PROFILE and choice.warning
    assert "'of' is not one of on/1/true/yes/auto or off/0/false/no: treated as on" in (
        choice.reason
    )


def test_a_missing_profile_file_is_a_warning_not_a_failure() -> None:
    choice = choose_profile({}, None)
    assert choice.profile is None and choice.warning
    assert "is not installed" in choice.reason and "UDP fragments" in choice.reason


def test_use_large_data_profile_names_it_for_fast_dds_2_and_3() -> None:
    env: dict[str, str] = {}
    choice = use_large_data_profile(env)
    assert choice.profile == PROFILE
    assert env == {
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE),
    }
    off = {"DAV2_FASTDDS_PROFILE": "off"}
    use_large_data_profile(off)
    assert off == {"DAV2_FASTDDS_PROFILE": "off"}  # nothing set


def test_shipped_profile_has_a_large_shm_segment_plus_udp_and_is_the_default() -> None:
    root = ET.parse(PROFILE).getroot()
    descriptors = {
        d.findtext("f:transport_id", namespaces=NS): d
        for d in root.iterfind(".//f:transport_descriptor", NS)
    }
    types = {name: d.findtext("f:type", namespaces=NS) for name, d in descriptors.items()}
    assert sorted(types.values()) == ["SHM", "UDPv4"]
    shm = next(d for d in descriptors.values() if d.findtext("f:type", namespaces=NS) == "SHM")
    segment = int(shm.findtext("f:segment_size", namespaces=NS))
    assert segment >= 4 * LARGEST_MESSAGE_BYTES  # a few frames in flight to a slow reader
    assert int(shm.findtext("f:maxMessageSize", namespaces=NS)) <= segment
    participant = root.find(".//f:participant", NS)
    assert participant.get("is_default_profile") == "true"
    rtps = participant.find("f:rtps", NS)
    assert rtps.findtext("f:useBuiltinTransports", namespaces=NS) == "false"
    used = [t.text for t in rtps.iterfind("f:userTransports/f:transport_id", NS)]
    assert sorted(used) == sorted(descriptors)
