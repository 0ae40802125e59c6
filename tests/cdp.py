"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (standard library only).

Chromium reads JSON commands from fd 3 and writes answers and events to fd 4, each message ended by a NUL
byte.  That is enough to open a page at a given window size, evaluate JavaScript in it (layout, DOM
geometry) and take a screenshot, with no websocket library and no port to open.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe")


class Browser:
    """One headless Chromium; ``page(url, width, height)`` opens a tab at that viewport size."""

    def __init__(self, exe: str, profile: Path, timeout_s: float = 120.0):
        to_chrome, self._w = os.pipe()
        self._r, from_chrome = os.pipe()

        def child() -> None:  # the protocol's fixed descriptors
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"], preexec_fn=child,
                                     pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buf, self._n, self._events = b"", 0, []
        self._deadline = time.monotonic() + timeout_s

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, self._deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its debugging pipe")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._n += 1
        message = {"id": self._n, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._n:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self._events.append(answer)

    def _wait(self, event: str) -> None:
        while not any(m.get("method") == event for m in self._events):
            self._events.append(self._read())
        self._events = [m for m in self._events if m.get("method") != event]

    def page(self, url: str, width: int, height: int) -> "Page":
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.enable", session)
        self.call("Page.navigate", session, url=url)
        self._wait("Page.loadEventFired")
        return Page(self, session)

    def close(self) -> None:
        os.close(self._w)
        os.close(self._r)
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def js(self, expression: str):
        """The JSON value of ``expression`` evaluated in the page."""
        out = self.browser.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            raise RuntimeError(out["exceptionDetails"])
        return out["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = False) -> bytes:
        data = base64.b64decode(self.browser.call("Page.captureScreenshot", self.session, format="png",
                                                  captureBeyondViewport=full_page)["data"])
        path.write_bytes(data)
        return data
