"""The start-up check names a missing display or missing xcb libraries before Qt can abort."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cardio_explorer.app.gui.startup import (
    XCB_LIBRARIES,
    check_display,
    missing_xcb_libraries,
    prefer_xcb,
)
from cardio_explorer.engine.errors import CardioInputError


def _all_load(_soname: str) -> bool:
    return True


def test_missing_xcb_libraries_are_named_with_their_packages(tmp_path):
    absent = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}
    with pytest.raises(CardioInputError) as caught:
        check_display(
            {"DISPLAY": ":0"},
            loads=lambda s: s not in absent,
            display_opens=lambda _d: True,
            plugin=tmp_path / "none.so",
        )
    message = str(caught.value)
    assert "libxcb-icccm.so.4" in message
    assert "libxcb-keysyms.so.1" in message
    assert "apt-get install libxcb-icccm4 libxcb-keysyms1" in message
    assert "libxcb-cursor" not in message  # Qt's own message blames this one wrongly


def test_no_display_is_one_clear_message(tmp_path):
    with pytest.raises(CardioInputError, match="DISPLAY is not set"):
        check_display({}, loads=_all_load, display_opens=lambda _d: True, plugin=tmp_path)
    with pytest.raises(CardioInputError, match="XWayland"):
        check_display({"WAYLAND_DISPLAY": "wayland-0"}, loads=_all_load, plugin=tmp_path)


def test_unreachable_display_is_named(tmp_path):
    with pytest.raises(CardioInputError, match="':42'"):
        check_display(
            {"DISPLAY": ":42"}, loads=_all_load, display_opens=lambda _d: False, plugin=tmp_path
        )


def test_headless_platforms_and_working_displays_pass(tmp_path):
    never = lambda _s: False  # noqa: E731  (would fail every library if it were asked)
    check_display({"QT_QPA_PLATFORM": "offscreen"}, loads=never, plugin=tmp_path)
    check_display(
        {"DISPLAY": ":0"}, loads=_all_load, display_opens=lambda _d: True, plugin=tmp_path
    )


@pytest.mark.xcb
def test_this_machine_has_what_the_known_list_names():
    # the README's apt line was run here (CI installs it too): nothing of the list is missing
    assert missing_xcb_libraries() == [], "install the README's apt line"
    assert len(XCB_LIBRARIES) >= 20


def test_window_without_display_exits_2_with_the_message():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-m", "cardio_explorer.app.cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "DISPLAY is not set" in done.stderr
    assert "core dumped" not in done.stderr.lower()


def test_a_wayland_desktop_with_xwayland_runs_qt_on_xcb():
    env = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}
    assert prefer_xcb(env)
    assert env["QT_QPA_PLATFORM"] == "xcb"  # VTK needs an X window id
    chosen = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "w", "QT_QPA_PLATFORM": "offscreen"}
    assert not prefer_xcb(chosen)
    assert chosen["QT_QPA_PLATFORM"] == "offscreen"  # the user's choice stands
    plain_x = {"DISPLAY": ":0"}
    assert not prefer_xcb(plain_x)
    assert "QT_QPA_PLATFORM" not in plain_x
