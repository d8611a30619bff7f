"""A small Chrome DevTools Protocol driver: headless Debian Chromium, no browser download.

Enough to open a page, click by visible text, wait for text, and save a PNG. Uses the
`websockets` package that Prefect already depends on.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

#: flags that work on a closed-network machine (see the environment notes)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=60))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def text(self) -> str:
        return str(self.eval("document.body ? document.body.innerText : ''") or "")

    def wait_for_text(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise TimeoutError(f"text {needle!r} did not appear within {timeout}s")
            time.sleep(0.3)

    def click_text(self, label: str, timeout: float = 30) -> None:
        """Click the innermost visible element whose own text is exactly `label`."""
        script = f"""(() => {{
            const want = {json.dumps(label)};
            const all = [...document.querySelectorAll('button, a, li, [role=tab], span, div')];
            const hit = all.find(e => e.innerText && e.innerText.trim() === want
                                      && e.offsetParent !== null && e.children.length < 3);
            if (!hit) return false;
            hit.click();
            return true;
        }})()"""
        deadline = time.monotonic() + timeout
        while not self.eval(script):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing to click labelled {label!r}")
            time.sleep(0.3)

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


@contextmanager
def chromium(width: int = 1440, height: int = 1100) -> Iterator[Page]:
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="slidegate-chromium-")
    proc = subprocess.Popen(
        [
            binary,
            *FLAGS,
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ws_url = _page_ws(port)
        with connect(ws_url, max_size=64 * 2**20, open_timeout=30) as ws:
            page = Page(ws)
            page.send("Page.enable")
            page.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _page_ws(port: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("chromium's DevTools endpoint did not come up")
        time.sleep(0.3)
