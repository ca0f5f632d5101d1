"""Check a report in a real browser: headless Chromium renders it to PNG and confirms every image loads.

    python -m reports.browser_check RUN_DIR/report.html [--screenshot OUT.png] [--height 4000]

Needs Chromium (Debian: ``apt-get install chromium``; also found as ``chromium-browser`` or
``google-chrome``). Three checks:

1. Offline: every ``<img>`` in the HTML is an embedded ``data:image/png;base64`` URI that decodes
   to a valid PNG (PIL verifies it) — the file is self-contained.
2. In the browser: Chromium loads the page (``--dump-dom``, with virtual time so the load event
   fires); the report's inline script writes ``data-images-total`` and ``data-images-loaded`` on
   ``<body>`` from ``img.complete && img.naturalWidth > 0``; they must be equal and match check 1.
3. A screenshot (``--screenshot``, default ``report.png`` beside the HTML) of the top of the page,
   for a person to look at.

Exit codes: 0 all images load; 1 an image failed; 2 bad input or no Chromium.
The browser runs isolated: a throw-away profile, no network services, no GPU, no sandbox (root in
containers).
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def embedded_images(html_text: str) -> list[dict]:
    """Each <img>: whether its source is an embedded PNG that decodes, and its pixel size."""
    from PIL import Image

    parser = _Images()
    parser.feed(html_text)
    out = []
    for src in parser.sources:
        info = {"embedded": src.startswith("data:image/png;base64,"), "decodes": False, "size": None}
        if info["embedded"]:
            try:
                raw = base64.b64decode(src.split(",", 1)[1], validate=True)
                with Image.open(io.BytesIO(raw)) as im:
                    im.verify()
                    info["size"] = im.size
                info["decodes"] = raw.startswith(PNG_SIGNATURE)
            except Exception:  # any decoding failure is a failed image
                info["decodes"] = False
        out.append(info)
    return out


def _run_browser(browser: str, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="tpflux-chromium-") as profile:
        return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout, check=False)


def browser_image_counts(browser: str, url: str, timeout: int = 120) -> tuple[int | None, int | None]:
    """(images on the page, images loaded) as the report's load script recorded them in Chromium."""
    result = _run_browser(browser, ["--virtual-time-budget=15000", "--dump-dom", url], timeout)
    body = re.search(r"<body[^>]*>", result.stdout)
    if body is None:
        return None, None
    total = re.search(r'data-images-total="(\d+)"', body.group(0))
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(0))
    return (int(total.group(1)) if total else None, int(loaded.group(1)) if loaded else None)


def screenshot(browser: str, url: str, out: Path, width: int = 1400, height: int = 4000,
               timeout: int = 120) -> Path:
    out = Path(out).resolve()
    _run_browser(browser, ["--virtual-time-budget=15000", f"--window-size={width},{height}",
                           f"--screenshot={out}", url], timeout)
    return out


def check(html_path: Path, screenshot_path: Path | None = None, width: int = 1400, height: int = 4000,
          browser: str | None = None) -> dict:
    """Run the three checks; returns their results (``ok`` is True when every image loads)."""
    html_path = Path(html_path).resolve()
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium found (" + ", ".join(BROWSERS) + ")")
    images = embedded_images(html_path.read_text(encoding="utf-8"))
    url = html_path.as_uri()
    total, loaded = browser_image_counts(browser, url)
    shot = screenshot(browser, url, screenshot_path or html_path.with_name("report.png"), width, height)
    shot_size = None
    if shot.exists() and shot.stat().st_size > 0:
        from PIL import Image

        with Image.open(shot) as im:
            shot_size = im.size
    ok = (len(images) > 0 and all(i["embedded"] and i["decodes"] for i in images)
          and total == len(images) and loaded == total and shot_size is not None)
    return {"ok": ok, "images": len(images), "decoded": sum(i["decodes"] for i in images),
            "browser_total": total, "browser_loaded": loaded, "screenshot": str(shot),
            "screenshot_size": shot_size, "browser": browser}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.browser_check", description=__doc__.split("\n\n")[0])
    p.add_argument("html", type=Path, help="RUN_DIR/report.html written by python -m reports.build")
    p.add_argument("--screenshot", type=Path, default=None, help="PNG to write (default report.png beside the HTML)")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=4000)
    args = p.parse_args(argv)
    if not args.html.is_file():
        print(f"error: {args.html}:-:-: no such report — build it with python -m reports.build RUN_DIR",
              file=sys.stderr)
        return 2
    try:
        result = check(args.html, args.screenshot, args.width, args.height)
    except FileNotFoundError as exc:
        print(f"error: {exc} — install Chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    print(f"images: {result['images']} embedded, {result['decoded']} decode as PNG; browser: "
          f"{result['browser_loaded']}/{result['browser_total']} loaded; screenshot {result['screenshot']} "
          f"{result['screenshot_size']}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
