"""The real services the tests need, started on loopback by the project itself.

    python -m tests.services start     # idempotent: a service already answering is kept
    python -m tests.services stop
    python -m tests.services status

``make services`` calls ``start`` (and ``.ci/run`` calls ``make test``, which needs it).
Each service records its pid and log under ``.mlbuild/services/``. Fixtures use
:class:`ServerProcess` for private instances they can stop, pause and resume.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".mlbuild" / "services"
MOTO_PORT = int(os.environ.get("MLBUILD_MOTO_PORT", "5055"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except (OSError, ValueError):
        return False


class ServerProcess:
    """One server process on loopback, with its pid and log files under ``folder``."""

    def __init__(self, name: str, argv: list[str], url: str, folder: Path,
                 env: dict[str, str] | None = None):
        self.name, self.argv, self.url, self.folder = name, argv, url, folder
        self.env = {**os.environ, **(env or {})}
        self.pidfile = folder / f"{name}.pid"
        self.logfile = folder / f"{name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 60) -> None:
        if answers(self.url):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                       env=self.env, start_new_session=True)
        self.pidfile.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while not answers(self.url):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
                raise RuntimeError(f"{self.name} did not start at {self.url}:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            self.resume()
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while self._alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not self._alive(pid):
                    break
        self.pidfile.unlink(missing_ok=True)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    def pause(self) -> None:
        """Freeze the server: connections are accepted but never answered."""
        os.killpg(self.pid(), signal.SIGSTOP)

    def resume(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGCONT)


def moto(port: int = MOTO_PORT, folder: Path = STATE, env: dict[str, str] | None = None,
         name: str = "moto") -> ServerProcess:
    """moto's S3 (and Batch) API over real HTTP."""
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return ServerProcess(name, argv, f"http://127.0.0.1:{port}", folder, env)


SERVICES = {"moto": moto}


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "status"
    for name, make in SERVICES.items():
        service = make()
        if action == "start":
            service.start()
            print(f"{name}: up at {service.url} (log {service.logfile})")
        elif action == "stop":
            service.stop()
            print(f"{name}: stopped")
        else:
            print(f"{name}: {'up' if answers(service.url) else 'down'} at {service.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
