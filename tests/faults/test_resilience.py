"""Fast checks of the fault handling pieces (no services): error mapping, retry options,
settings from the environment, `slidegate list`."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from flows.cli import main
from flows.resilience import backoff, explain, publish_options
from slidegate.egress.gate import open_gate
from slidegate.errors import CorruptSlideError, SlidegateError
from slidegate.publish.release import publish_files, write_manifest
from slidegate.publish.stores import LocalStore
from slidegate.settings import Settings


def test_explain_gives_publishable_reasons() -> None:
    settings = Settings(slide_timeout_s=30)
    full = explain(OSError(errno.ENOSPC, "No space left on device"), settings)
    assert isinstance(full, SlidegateError)
    assert full.reason == "staging area full (no space left on device)"
    io = explain(OSError(errno.EIO, "Input/output error"), settings)
    assert isinstance(io, SlidegateError) and "Input/output error" in io.reason
    corrupt = CorruptSlideError("x", reason="corrupt: truncated")
    assert explain(corrupt, settings) is corrupt
    assert explain(None, settings) is None
    other = ValueError("boom")
    assert explain(other, settings) is other


def test_retry_and_time_limit_options() -> None:
    settings = Settings(publish_retries=3, publish_retry_delay_s=5, slide_timeout_s=60)
    assert backoff(settings) == [5, 20, 80]
    assert publish_options(settings) == {"retries": 3, "retry_delay_seconds": [5, 20, 80]}


def test_settings_from_environment() -> None:
    env = {
        "SLIDEGATE_SLIDE_TIMEOUT_S": "90",
        "SLIDEGATE_CLUSTER": "slurm",
        "SLIDEGATE_PUBLISH_RETRIES": "1",
        "SLIDEGATE_S3_MAX_ATTEMPTS": "3",
    }
    settings = Settings.from_env(env)
    assert settings.slide_timeout_s == 90 and settings.cluster == "slurm"
    assert settings.publish_retries == 1 and settings.s3_max_attempts == 3


def test_list_shows_only_complete_releases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "target")
    data = tmp_path / "a.txt"
    data.write_text("a\n")
    for release in ("r-complete", "r-half"):
        records = publish_files(open_gate(store), release, {"a.txt": data})
    write_manifest(open_gate(store), "r-complete", records, {})
    assert main(["list", str(tmp_path / "target")]) == 0
    assert capsys.readouterr().out.split() == ["r-complete"]
    assert main(["verify", str(tmp_path / "target" / "r-half")]) == 1
    assert main(["verify", str(tmp_path / "target" / "r-complete")]) == 0
