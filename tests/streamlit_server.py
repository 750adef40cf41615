"""A real ``streamlit run app.py`` for the browser tests, on a free 127.0.0.1 port."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def require_chromium() -> None:
    """Skip the calling test module without Chromium; in CI, fail loudly instead."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            raise RuntimeError("Chromium is required for the browser tests in CI")
        pytest.skip("Chromium is not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(log_name: str, timeout_s: float = 60, args: tuple[str, ...] = (),
                script: Path = ROOT / "app.py", cpus: set[int] | None = None,
                env: dict[str, str] | None = None) -> Iterator[SimpleNamespace]:
    """Start the app headless (file watcher off: no reloads while it runs) and yield its ``url`` and ``pid``;
    its log goes to ``artifacts/<log_name>``. ``args``: the app's own arguments (after ``--``), e.g.
    ``("--model-code", "net.py:build")``; ``script``: another Streamlit script, run from its own folder;
    ``cpus``: the cores the server may run on (Linux; all of them by default); ``env``: variables added to
    the server's environment."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / log_name, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none", "--server.runOnSave", "false", *(("--", *args) if args else ())],
            cwd=script.parent, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + timeout_s
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"the Streamlit server did not come up within {timeout_s:.0f} s") from None
                    time.sleep(0.5)
            yield SimpleNamespace(url=url, pid=process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
