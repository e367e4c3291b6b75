"""The real services the tests need, started on loopback by the project itself.

    python -m tests.services start     # idempotent: a service already answering is kept
    python -m tests.services stop
    python -m tests.services status
    python -m tests.services env       # the environment that points at them (DOCKER_HOST)

``make services`` calls ``start`` (and ``.ci/run`` calls ``make test``, which needs it):
moto's S3 API; a Docker engine (installed from Debian's packages and started with its
data under ``.mlbuild/services/`` when none is reachable and this machine allows it);
an image registry (the CNCF distribution registry) on loopback; and local Debian base
images built once with mmdebstrap, since no public registry can be reached here: one for
the serving and training images, one with git and Chromium for the test image. Each
service records its pid and log under ``.mlbuild/services/``. Fixtures use
:class:`ServerProcess` for private instances they can stop, pause and resume.
"""

from __future__ import annotations

import os
import shutil
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
REGISTRY_PORT = int(os.environ.get("MLBUILD_REGISTRY_PORT", "5056"))
DOCKER_SOCKET = STATE / "docker" / "docker.sock"
#: the local base image tests and CI build their serving images on
BASE_IMAGE = os.environ.get("MLBUILD_TEST_BASE_IMAGE", "mlbuild/base:bookworm")
BASE_PACKAGES = "python3,python3-venv,libgomp1,ca-certificates"
#: the test image's base: the tests in the image need git (model history, retrain),
#: Chromium (the report's browser test) and libatomic1 (Playwright's driver, node)
TEST_BASE_IMAGE = "mlbuild/base-test:bookworm"
TEST_BASE_PACKAGES = f"{BASE_PACKAGES},git,chromium,fonts-dejavu-core,libatomic1"


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
                 env: dict[str, str] | None = None, ready=None):
        self.name, self.argv, self.url, self.folder = name, argv, url, folder
        self.ready = ready or (lambda: answers(self.url))
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
        if self.ready():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                       env=self.env, start_new_session=True)
        self.pidfile.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while not self.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
                raise RuntimeError(f"{self.name} did not start at {self.url}:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            self.resume()
            # SIGTERM to the server alone, so that it can stop its own children (dockerd
            # stops containerd and unmounts what it mounted); then the whole group.
            for sig, wait, kill in ((signal.SIGTERM, 20, os.kill), (signal.SIGKILL, 5, os.killpg)):
                try:
                    kill(pid, sig)
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


#: The AWS environment of the local services (dummy credentials; tests check they never leak).
TEST_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAMLBUILDTEST00001",
    "AWS_SECRET_ACCESS_KEY": "mlbuild-test-secret-5b1f0c9e",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: What a Batch job needs to reach the local moto: ``[batch] environment`` for tests.
BATCH_FORWARD = "AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION"
BATCH_QUEUE = "mlbuild"


def batch_moto(port: int = MOTO_PORT, folder: Path = STATE, docker_host: str | None = None,
               name: str = "moto") -> ServerProcess:
    """moto with Batch: each job runs as a real container in the engine at ``docker_host``,
    on the host's network so that it reaches moto's S3 on loopback."""
    env = {"DOCKER_HOST": docker_host or docker_url(), "MOTO_DOCKER_NETWORK_MODE": "host"}
    return moto(port, folder, env, name)


def aws_client(service: str, endpoint: str):
    """A boto3 client of the local moto, with the dummy credentials."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=TEST_AWS["AWS_DEFAULT_REGION"],
                        aws_access_key_id=TEST_AWS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=TEST_AWS["AWS_SECRET_ACCESS_KEY"])


def create_batch_queue(endpoint: str, queue: str = BATCH_QUEUE) -> None:
    """An UNMANAGED compute environment and the job queue ``queue`` (kept when there)."""
    batch = aws_client("batch", endpoint)
    if batch.describe_job_queues(jobQueues=[queue])["jobQueues"]:
        return
    iam = aws_client("iam", endpoint)
    try:
        role = iam.get_role(RoleName="mlbuild-batch")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="mlbuild-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"{queue}-local", type="UNMANAGED", state="ENABLED",
        serviceRole=role)["computeEnvironmentArn"]
    batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1,
                           computeEnvironmentOrder=[{"order": 1,
                                                     "computeEnvironment": environment}])


def luigid(port: int, folder: Path) -> ServerProcess:
    """Luigi's central scheduler on loopback."""
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", "from luigi.cmdline import luigid; luigid()",
            "--address", "127.0.0.1", "--port", str(port), "--logdir", str(folder),
            "--state-path", str(folder / "state.pickle")]
    return ServerProcess("luigid", argv, f"http://127.0.0.1:{port}/", folder)


def docker_answers(url: str) -> bool:
    try:
        import docker

        client = docker.DockerClient(base_url=url, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def docker_url() -> str:
    """An engine that answers: DOCKER_HOST, the system socket, or ours (maybe not started)."""
    for url in (os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock"):
        if url and docker_answers(url):
            return url
    return f"unix://{DOCKER_SOCKET}"


def apt_install(*packages: str) -> None:
    """Install Debian packages when a command is missing (CI and fresh machines run as root)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{', '.join(packages)} missing and cannot be installed here: "
                           "install them, or set DOCKER_HOST to a Docker engine.")
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, **quiet)


def docker_engine() -> ServerProcess:
    folder = STATE / "docker"
    url = f"unix://{DOCKER_SOCKET}"
    argv = ["dockerd", "--iptables=false", "--bridge=none", "--storage-driver=overlay2",
            "--data-root", str(folder / "data"), "--exec-root", str(folder / "exec"),
            "--pidfile", str(folder / "engine.pid"), "--host", url]
    return ServerProcess("dockerd", argv, url, folder, ready=lambda: docker_answers(url))


def registry(port: int = REGISTRY_PORT, folder: Path = STATE / "registry",
             name: str = "registry") -> ServerProcess:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return ServerProcess(name, ["docker-registry", "serve", str(config)],
                         f"http://127.0.0.1:{port}/v2/", folder)


def start_docker() -> str:
    """Make sure an engine answers; return its URL."""
    url = docker_url()
    if docker_answers(url):
        return url
    if not shutil.which("dockerd"):
        apt_install("docker.io")
    engine = docker_engine()
    try:
        engine.start()
    except RuntimeError:
        # overlay2 needs a kernel and file system that allow it; vfs always works.
        engine.argv[engine.argv.index("--storage-driver=overlay2")] = "--storage-driver=vfs"
        engine.start()
    return url


def build_base_image(url: str, image: str = BASE_IMAGE, packages: str = BASE_PACKAGES) -> None:
    """A local Debian base image of ``packages``, built once and kept by its tag."""
    import docker

    client = docker.DockerClient(base_url=url, timeout=600)
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    if not shutil.which("mmdebstrap"):
        apt_install("mmdebstrap")
    tarball = STATE / f"base-{os.getpid()}.tar"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mmdebstrap", "--quiet", "--variant=apt", f"--include={packages}",
                    "bookworm", str(tarball)], check=True)
    repository, tag = image.rsplit(":", 1)
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    tarball.unlink()


def build_base_images(url: str) -> None:
    build_base_image(url)
    build_base_image(url, TEST_BASE_IMAGE, TEST_BASE_PACKAGES)


def start_all() -> None:
    url = start_docker()
    print(f"docker: up at {url}")
    server = batch_moto(docker_host=url)
    server.start()
    create_batch_queue(server.url)
    print(f"moto: up at {server.url} (S3; Batch, job queue {BATCH_QUEUE!r}, jobs run in {url})")
    if not shutil.which("docker-registry"):
        apt_install("docker-registry")
    registry().start()
    print(f"registry: up at {registry().url}")
    build_base_images(url)
    print(f"base images: {BASE_IMAGE}; for the test image, {TEST_BASE_IMAGE}")
    if not shutil.which("chromium"):  # the report tests look at report.html in a browser
        apt_install("chromium", "fonts-dejavu-core")
    print(f"browser: {shutil.which('chromium') or 'not installed (the report tests will skip)'}")
    print(f'To use these services in your shell: eval "$({Path(sys.executable).name} -m '
          'tests.services env)"')


def stop_all() -> None:
    for service in (moto(), registry(), docker_engine()):
        service.stop()
        print(f"{service.name}: stopped")


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "status"
    if action == "start":
        start_all()
    elif action == "stop":
        stop_all()
    elif action == "env":
        # What `make pipeline` and `make image` run with: the engine, the local base image
        # (no public registry is reachable here) and the registry on loopback.
        # Values already in the environment win.
        print(f"export DOCKER_HOST={docker_url()}")
        print(f'export MLBUILD_IMAGE_BASE="${{MLBUILD_IMAGE_BASE:-{BASE_IMAGE}}}"')
        print(f'export MLBUILD_TEST_IMAGE_BASE="${{MLBUILD_TEST_IMAGE_BASE:-{TEST_BASE_IMAGE}}}"')
        print('export MLBUILD_IMAGE_REGISTRY="${MLBUILD_IMAGE_REGISTRY-127.0.0.1:'
              f'{REGISTRY_PORT}}}"')
    else:
        print(f"moto: {'up' if answers(moto().url) else 'down'} at {moto().url}")
        url = docker_url()
        print(f"docker: {'up' if docker_answers(url) else 'down'} at {url}")
        print(f"registry: {'up' if answers(registry().url) else 'down'} at {registry().url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
