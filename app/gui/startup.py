"""Before Qt starts: is there a display, and can Qt's xcb platform plugin load?

Without this, a missing X library or display makes Qt abort (core dump, exit 134) with a
message that may blame the wrong library. Here the user gets one line naming what is missing
and the apt command that fixes it. Nothing here imports Qt's GUI modules.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from cardio_explorer.engine.errors import CardioInputError

# shared libraries Qt's xcb plugin (and VTK's X render window) loads -> the Debian/Ubuntu
# package that ships each; the README's set-up line installs all of them
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libXcursor.so.1": "libxcursor1",  # VTK's X render window loads it at run time
}
# platforms that need no display server of their own
HEADLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs")


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def xcb_plugin_path() -> Path | None:
    """Qt's xcb platform plugin inside the installed PySide6 (None when not found)."""
    try:
        import PySide6  # the package only: its GUI modules are not loaded here
    except ImportError:
        return None
    path = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def _ldd_missing(plugin: Path) -> list[str]:
    """Sonames ``ldd`` reports as not found for the plugin (empty where ldd is absent)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run(
            [ldd, str(plugin)], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def missing_xcb_libraries(
    loads: Callable[[str], bool] = _loads, plugin: Path | None = None
) -> list[str]:
    """Sonames the xcb plugin needs that the dynamic loader cannot find, known ones first."""
    missing = [soname for soname in XCB_LIBRARIES if not loads(soname)]
    plugin = plugin if plugin is not None else xcb_plugin_path()
    if plugin is not None:
        missing += [s for s in _ldd_missing(plugin) if s not in missing]
    return missing


def _display_opens(name: str) -> bool:
    """True when libX11 can connect to the X display ``name``."""
    path = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        x11 = ctypes.CDLL(path)
    except OSError:
        return True  # missing libX11 is reported with the other libraries
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(name.encode())
    if not handle:
        return False
    x11.XCloseDisplay(handle)
    return True


def prefer_xcb(environ: dict[str, str] | None = None) -> bool:
    """On a Wayland desktop with XWayland, run Qt on xcb (sets QT_QPA_PLATFORM); True if set.

    VTK's render window needs an X window id; Qt's wayland platform, which Qt picks on a
    Wayland session, has none, and the 3D view would stay black or crash.
    """
    env = os.environ if environ is None else environ
    if env.get("QT_QPA_PLATFORM") or not env.get("DISPLAY") or not env.get("WAYLAND_DISPLAY"):
        return False
    env["QT_QPA_PLATFORM"] = "xcb"
    return True


def check_display(
    environ: Mapping[str, str] | None = None,
    loads: Callable[[str], bool] = _loads,
    display_opens: Callable[[str], bool] = _display_opens,
    plugin: Path | None = None,
) -> None:
    """Raise CardioInputError naming a missing display or missing xcb libraries, before Qt
    starts; returns quietly on a headless platform, a non-Linux system or a working X set-up."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip().lower()
    if platform in HEADLESS_PLATFORMS or not Path("/proc").is_dir():
        return  # macOS and Windows have their own platform plugins; /proc marks Linux here
    if platform not in ("", "xcb"):
        return  # wayland and others: the user chose it, Qt's own message applies
    missing = missing_xcb_libraries(loads, plugin)
    if missing:
        packages = sorted({XCB_LIBRARIES.get(s, s) for s in missing})
        raise CardioInputError(
            "display libraries",
            f"Qt's xcb platform cannot load {', '.join(missing)}; install them with "
            f"'sudo apt-get install {' '.join(packages)}' (the README's set-up line lists "
            "all of them), or use --screenshot for a window-less run",
        )
    display = env.get("DISPLAY", "")
    if not display:
        wayland = " (a Wayland session needs XWayland, which sets DISPLAY)"
        raise CardioInputError(
            "display",
            "DISPLAY is not set, so there is no X display to open the window on"
            f"{wayland if env.get('WAYLAND_DISPLAY') else ''}; run it on a desktop, under "
            "'xvfb-run -a cardio-explorer', or use --screenshot PNG for a window-less run",
        )
    if not display_opens(display):
        raise CardioInputError(
            "display",
            f"cannot connect to the X display {display!r} (is the X server running, and may "
            "this user open windows on it? see 'xhost')",
        )
