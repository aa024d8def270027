"""The annotation page in a real browser: Debian's headless Chromium driven by Selenium.

The server runs in its own process (`python -m dav2_train.da2k.cli annotate`, the
code `dav2-train da2k annotate` dispatches to, without the 3 s torch import of the
training CLI). The browser answers by click and by key, skips, undoes; the server is
SIGKILLed mid-way and restarted on the same port, and no answer is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from dav2_train.da2k.annotations import PairLabel, read_annotations
from dav2_train.da2k.session import JOURNAL_NAME, PROPOSAL_FORMAT, PROPOSAL_NAME

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (`make system-deps` installs them)",
)

# Five queued pairs on one 240×180 image (points well apart), one labelled by the experts.
QUEUE = {
    "q1": ([30, 40], [150, 200]),
    "q2": ([40, 200], [140, 30]),
    "q3": ([90, 60], [20, 180]),
    "q4": ([160, 120], [60, 120]),
    "q5": ([25, 25], [155, 215]),
}
VOTES = [
    {"expert": "expert-alpha@84", "closer": "point1", "margin": 0.25, "disparity": [2.0, 1.5]},
    {"expert": "expert-beta@42", "closer": "point2", "margin": 0.05, "disparity": [1.0, 1.05]},
]


def _proposal(folder: Path) -> None:
    (folder / "images").mkdir(parents=True)
    rgb = np.zeros((180, 240, 3), np.uint8)
    rgb[:90] = (120, 170, 230)
    rgb[90:] = (90, 140, 60)
    cv2.imwrite(str(folder / "images" / "scene.png"), rgb)
    pairs = [
        {
            "id": "auto1",
            "image": "images/scene.png",
            "point1": [10, 10],
            "point2": [170, 230],
            "kind": "far",
            "votes": VOTES,
            "auto": "point2",
        }
    ] + [
        {
            "id": pair_id,
            "image": "images/scene.png",
            "point1": p1,
            "point2": p2,
            "kind": "near",
            "votes": VOTES,
            "auto": None,
        }
        for pair_id, (p1, p2) in QUEUE.items()
    ]
    proposal = {
        "format": PROPOSAL_FORMAT,
        "images": {"images/scene.png": {"height": 180, "width": 240, "key": "scene.png"}},
        "pairs": pairs,
    }
    (folder / PROPOSAL_NAME).write_text(json.dumps(proposal))


def _start_server(folder: Path, port: int = 0) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dav2_train.da2k.cli", "annotate", str(folder), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = process.stdout.readline()  # "... open http://127.0.0.1:PORT/ ..."
    if "http://127.0.0.1:" not in line:
        process.kill()
        raise AssertionError(f"server did not start: {line}{process.stdout.read()}")
    return process, int(line.split("http://127.0.0.1:")[1].split("/")[0])


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=900,700")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_a_person_answers_by_click_and_key_and_a_killed_server_loses_nothing(
    tmp_path: Path, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def progress_is(text: str) -> None:
        WebDriverWait(browser, 15).until(
            lambda d: d.find_element(By.ID, "progress").text.startswith(text),
            message=f"progress never read {text!r}",
        )

    def shown_pair() -> str:
        WebDriverWait(browser, 15).until(
            lambda d: d.execute_script(
                "const i = document.getElementById('photo'); return i.complete && i.naturalWidth"
            )
        )
        return browser.execute_script("return current && current.id")

    def press(key: str) -> None:
        browser.find_element(By.TAG_NAME, "body").send_keys(key)

    folder = tmp_path / "proposal"
    _proposal(folder)
    server, port = _start_server(folder)
    restarted = None
    try:
        url = f"http://127.0.0.1:{port}/"
        browser.get(url)
        progress_is("0 done / 5 left")
        assert shown_pair() == "q1"
        # The experts' votes are nowhere on the page before the person answers.
        assert "expert-alpha" not in browser.page_source
        assert browser.find_element(By.ID, "reveal").text == ""

        browser.find_element(By.ID, "marker-point2").click()  # q1: click point 2
        progress_is("1 done / 4 left")
        assert "expert-alpha@84: 1" in browser.find_element(By.ID, "reveal").text
        assert shown_pair() == "q2"
        press("1")  # q2: key 1
        progress_is("2 done / 3 left")
        assert shown_pair() == "q3"
        press("s")  # q3: unsure
        progress_is("3 done / 2 left (1 skipped)")
        press("u")  # undo the skip: q3 again
        progress_is("2 done / 3 left")
        assert shown_pair() == "q3"
        press("2")  # q3: key 2
        progress_is("3 done / 2 left")

        # A port in use is refused with a clear message, and the running server is unharmed.
        clash = subprocess.run(
            [sys.executable, "-m", "dav2_train.da2k.cli", "annotate", str(folder)]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert clash.returncode == 2
        assert f"port {port} on 127.0.0.1 is already in use" in clash.stderr
        assert "Traceback" not in clash.stderr

        server.send_signal(signal.SIGKILL)  # no chance to save anything on the way out
        server.wait(timeout=10)
        restarted, _ = _start_server(folder, port)
        browser.get(url)
        progress_is("3 done / 2 left")  # nothing lost, resumes at the first open pair
        assert shown_pair() == "q4"
        browser.find_element(By.ID, "marker-point1").click()  # q4: click point 1
        progress_is("4 done / 1 left")
        assert shown_pair() == "q5"
        press("2")  # q5: key 2
        progress_is("5 done / 0 left")
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "done").is_displayed())
        assert browser.find_element(By.ID, "output").text.endswith("annotations.json")
    finally:
        for process in (server, restarted):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    # The official file: the experts' pair plus every answer except the skip that was
    # undone and answered again; the closer point first.
    labels = read_annotations(folder / "annotations.json")["images/scene.png"]

    def label(pair_id: str, closer: str) -> PairLabel:
        p1, p2 = (tuple(p) for p in QUEUE[pair_id])
        return PairLabel(p1, p2) if closer == "point1" else PairLabel(p2, p1)

    assert labels == [
        PairLabel((170, 230), (10, 10)),
        label("q1", "point2"),
        label("q2", "point1"),
        label("q3", "point2"),
        label("q4", "point1"),
        label("q5", "point2"),
    ]
    journal = [json.loads(line) for line in (folder / JOURNAL_NAME).read_text().splitlines()]
    assert [(r["op"], r["pair"], r.get("closer")) for r in journal] == [
        ("answer", "q1", "point2"),
        ("answer", "q2", "point1"),
        ("answer", "q3", "skip"),
        ("undo", "q3", None),
        ("answer", "q3", "point2"),
        ("answer", "q4", "point1"),
        ("answer", "q5", "point2"),
    ]
