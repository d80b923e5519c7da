"""Take the README's screenshots with the app itself (bundled models, offscreen or on a display).

    .venv/bin/python docs/make_screenshots.py [--heart LABELS.nii.gz]

Writes docs/shot_*.png: the default view, a real heart opened and morphed to DCM beside its own
image, the conditions tab playing a heartbeat, the latent view (t-SNE), the Help dialog. Each is
the window as the app composes it (Qt widgets plus the VTK pixels), reduced to a 256-colour
palette so the PNGs stay small.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DOCS = Path(__file__).resolve().parent
DEFAULT_HEART = DOCS.parents[1] / "shared" / "realdata" / "mnms-sample" / "H1N8S6_sa_ED_gt.nii.gz"
SIZE = (1400, 880)


def _settle(app, window, timeout_s: float = 180.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        app.processEvents()
        if window.settled():
            break
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def _small_png(image_path: Path) -> None:
    from PIL import Image

    with Image.open(image_path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        small.save(image_path, optimize=True)


def _shoot(window, name: str) -> Path:
    from cardio_explorer.viewer.screenshot import save_screenshot

    window.views.heart.render()
    path = save_screenshot(window, DOCS / f"shot_{name}.png")
    _small_png(path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return path


def main() -> int:
    """Drive the window through the five views and write one PNG of each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heart", type=Path, default=DEFAULT_HEART, help="a real label file")
    args = parser.parse_args()
    import torch
    from PySide6.QtWidgets import QApplication

    from cardio_explorer.app.gui.window import CONDITIONS_TAB, MORPH_TAB, MainWindow
    from cardio_explorer.app.jobs.models import load_engines

    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = MainWindow(load_engines({}, torch.device("cpu")))
    window.resize(*SIZE)
    window.show()
    _settle(app, window)
    _shoot(window, "default")

    if args.heart.exists():
        window.hearts.open([args.heart])
        _settle(app, window)
        window.state.update({"target_group": "DCM", "alpha": 0.8, "show_image": True})
        _settle(app, window)
        _shoot(window, "your_heart")
    else:
        print(f"no real heart at {args.heart}: that screenshot is skipped", file=sys.stderr)

    window.state.set("embedding", "tsne")
    window.plots.setCurrentWidget(window.views.alpha_curve)
    _settle(app, window)
    for _ in range(350):  # let the layout's progress note leave the status bar
        app.processEvents()
        time.sleep(0.01)
    _shoot(window, "latent")

    window.tabs.setCurrentIndex(CONDITIONS_TAB)
    window.sequences.generate()
    _settle(app, window)
    window.playback.set_playing(True)
    for _ in range(60):  # about half a heartbeat, drawn as the app plays it
        app.processEvents()
        time.sleep(0.01)
    _shoot(window, "conditions")
    window.playback.set_playing(False)

    window.tabs.setCurrentIndex(MORPH_TAB)
    dialog = window.help.show_about()
    dialog.resize(720, 560)
    _settle(app, window)
    path = DOCS / "shot_help.png"
    dialog.grab().save(str(path))
    _small_png(path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
