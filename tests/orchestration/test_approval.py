"""Manual approval: the release pauses before publishing; `slidegate approve` publishes it,
`slidegate reject --reason` publishes nothing and records the reason; no answer times out."""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

import pytest

from flows.exitcodes import WITHHELD
from tests.orchestration.conftest import REPO, SLIDEGATE, cli_env, slidegate, wait_for_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from slidegate.synth import generate_cohort

    return generate_cohort(
        tmp_path_factory.mktemp("steward"), slides=2, patients=1, seed=5, base_size=(512, 768)
    )


def start_release(cohort, name: str, profile: str, env: dict[str, str], work: Path):  # type: ignore[no-untyped-def]
    spec = cohort.root / f"{name}.yaml"
    spec.write_text(
        f"release: {name}\nsource: slides\ncohort: cohort.csv\nprofile: {profile}\n"
        f"target: out/{name}\ncanaries: canaries.json\n"
    )
    # a target and a registry per release: the module's releases share one cohort, and one
    # registry's ledger would block the second release of the same slides
    registry = f"sqlite:///{work.parent / f'registry-{name}.sqlite'}"
    return subprocess.Popen(
        [
            *SLIDEGATE,
            "release",
            str(spec),
            "--work-dir",
            str(work),
            "--workers",
            "1",
            "--registry-url",
            registry,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, code: int = 0) -> str:  # type: ignore[type-arg]
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == code, out[-3000:]
    return str(out)


def test_paused_release_is_published_after_approve(
    cohort, prefect_server, steward_policies, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(prefect_server.api_url, SLIDEGATE_POLICIES_DIR=str(steward_policies))
    proc = start_release(cohort, "steward-ok", "steward", env, tmp_path / "work")
    try:
        run = wait_for_run("release-steward-ok", "PAUSED")
        target = cohort.root / "out" / "steward-ok" / "steward-ok"
        assert not (target / "manifest.json").exists()  # paused before publishing
        answered = slidegate("approve", str(run.id), env=env)
        assert answered.returncode == 0, answered.stderr
        out = finish(proc)
    finally:
        proc.kill()
    assert "published to" in out
    assert (target / "manifest.json").is_file()
    record = json.loads(
        (tmp_path / "work" / "releases" / "steward-ok" / "approval.json").read_text()
    )
    assert record["approved"] is True and record["by"] == f"{getpass.getuser()} (cli)"
    assert not list(target.rglob("approval.json"))  # the decision record stays private
    from slidegate.registry.store import Registry

    registry = Registry(f"sqlite:///{tmp_path / 'registry-steward-ok.sqlite'}")
    approvals = registry.approvals("steward-ok")
    assert [(a["decision"], a["approver"]) for a in approvals] == [("approved", record["by"])]
    assert wait_for_run("release-steward-ok", "COMPLETED", timeout=30)


def test_rejected_release_publishes_nothing_and_keeps_the_reason(
    cohort, prefect_server, steward_policies, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(prefect_server.api_url, SLIDEGATE_POLICIES_DIR=str(steward_policies))
    proc = start_release(cohort, "steward-no", "steward", env, tmp_path / "work")
    try:
        wait_for_run("release-steward-no", "PAUSED")
        # by name works too; --reason is required for reject
        assert slidegate("reject", "release-steward-no", env=env).returncode != 0
        answered = slidegate(
            "reject",
            "release-steward-no",
            "--reason",
            "macro shows a hand-written label",
            "--as",
            "Dr.  A. Steward",
            env=env,
        )
        assert answered.returncode == 0, answered.stderr
        out = finish(proc, WITHHELD)  # nothing published: exit 3
    finally:
        proc.kill()
    assert "rejected: nothing published" in out
    published = [p for p in (cohort.root / "out").rglob("*") if "steward-no" in str(p)]
    assert [p for p in published if p.is_file()] == []
    record = json.loads(
        (tmp_path / "work" / "releases" / "steward-no" / "approval.json").read_text()
    )
    assert record == {**record, "approved": False, "by": "Dr. A. Steward (cli)"}
    assert record["reason"] == "macro shows a hand-written label"


def test_unanswered_release_is_rejected_by_the_timeout(
    cohort, prefect_server, steward_policies, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(prefect_server.api_url, SLIDEGATE_POLICIES_DIR=str(steward_policies))
    proc = start_release(cohort, "steward-late", "steward-timeout", env, tmp_path / "work")
    try:
        out = finish(proc, WITHHELD)  # nothing published: exit 3
    finally:
        proc.kill()
    assert "rejected: nothing published" in out
    assert not (cohort.root / "out" / "steward-late" / "steward-late" / "manifest.json").exists()
    record = json.loads(
        (tmp_path / "work" / "releases" / "steward-late" / "approval.json").read_text()
    )
    assert record["approved"] is False and record["by"] == "timeout"
