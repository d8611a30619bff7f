"""The registry inside real releases (`slidegate release`, a real Prefect server and Dask), on
SQLite and on PostgreSQL: work areas change nothing, unknown releases stop a release, one
release into a target at a time, a complete release rerun is verified, and a release killed
with SIGKILL during conversion resumes without converting its audited slides again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from flows import exitcodes
from flows.cli import main
from slidegate.publish.release import verify_release
from slidegate.publish.stores import open_store
from slidegate.registry import Registry
from slidegate.settings import Settings
from tests.pgservice import url_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


# whole releases on both databases: the PostgreSQL runs are under `slow` (`make test-all`), the
# registry's own tests (tests/registry/test_registry.py) run on both in the default run
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_for(request, tmp_path)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The policy library with controlled access's risk limits opened: every slide of the small
    cohort is approved, so what these tests see is the registry's doing, not the risk model's
    (the ledger still blocks a re-release)."""
    import shutil

    root = tmp_path_factory.mktemp("policies") / "policies"
    shutil.copytree(REPO / "policies", root)
    profile = root / "profiles" / "controlled-access.yaml"
    text_ = profile.read_text()
    for key in ("max_risk", "max_mean_risk"):
        assert f"  {key}: 0.2\n" in text_
        text_ = text_.replace(f"  {key}: 0.2\n", f"  {key}: 1.0\n")
    profile.write_text(text_)
    return root


@pytest.fixture(autouse=True)
def registry_key(monkeypatch: pytest.MonkeyPatch, policies: Path) -> None:
    """The key that seals pseudonym keys (PostgreSQL needs one; SQLite would make a file)."""
    monkeypatch.setenv("SLIDEGATE_REGISTRY_KEY", "5e" * 32)
    monkeypatch.setenv("SLIDEGATE_POLICIES_DIR", str(policies))


@pytest.fixture(autouse=True)
def lenient_policies(
    policies_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open access at P(attack) 0.05 (R <= 0.05 < its 0.09 threshold: nothing withheld on risk):
    these tests are about the registry and the ledger, not the risk thresholds, and a 2-patient
    cohort cannot meet EMA's 0.09 (classes of 12 and more)."""
    copy = tmp_path_factory.mktemp("lenient") / "policies"
    shutil.copytree(policies_dir, copy)
    path = copy / "profiles" / "open-access.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  p_attack: 1.0\n" in text
    path.write_text(text.replace("  p_attack: 1.0\n", "  p_attack: 0.05\n"), encoding="utf-8")
    monkeypatch.setenv("SLIDEGATE_POLICIES_DIR", str(copy))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("registry-cohort")
    return generate_cohort(root, slides=4, patients=2, seed=21, base_size=(768, 1024))


def spec(cohort: Any, release: str, target: Path) -> Path:
    path = cohort.root / f"{release}-{target.name}.yaml"
    path.write_text(
        f"release: {release}\nsource: slides\ncohort: cohort.csv\nprofile: controlled-access\n"
        f"target: {target}\ncanaries: canaries.json\n",
        encoding="utf-8",
    )
    return path


def cli(*args: str | Path) -> list[str]:
    return ["release", *map(str, args), "--workers", "1"]


def test_work_areas_share_one_registry(
    cohort: Any, prefect_server: Any, registry_url: str, tmp_path: Path, capsys: Any
) -> None:
    target = tmp_path / "target"
    first = spec(cohort, "wa-1", target)
    reg = ["--registry-url", registry_url]
    capsys.readouterr()
    assert main([*cli(first, "--work-dir", tmp_path / "A"), *reg, "--json"]) == 0
    assert (target / "wa-1" / "manifest.json").is_file()
    doc = json.loads(capsys.readouterr().out)  # --json: stdout is the summary document only
    assert doc["schema"] == "slidegate.run-summary/1" and doc["outcome"] == "published"
    assert doc["exit_code"] == 0 and doc["release"] == "wa-1" and doc["error"] is None
    assert doc["counts"] == {"approved": 4, "withheld": 0, "quarantined": 0}
    assert doc["target"] == f"{target}/wa-1"
    # the same spec from another work area: verified, reported complete, exit 0
    capsys.readouterr()
    assert main([*cli(first, "--work-dir", tmp_path / "B"), *reg]) == 0
    assert "release wa-1 is complete at" in capsys.readouterr().out
    # the same slides under a new release id from another work area: the ledger stops them
    again = spec(cohort, "wa-2", target)
    assert main([*cli(again, "--work-dir", tmp_path / "B"), *reg, "--json"]) == exitcodes.WITHHELD
    captured = capsys.readouterr()
    err = captured.err
    doc = json.loads(captured.out)
    assert doc["outcome"] == "withheld" and doc["exit_code"] == exitcodes.WITHHELD
    assert doc["error"]["category"] == "policy-violation"
    withheld = doc["counts"]["withheld"]
    assert withheld > 0
    assert doc["reasons"]["withheld"] == [{"code": "ledger.slide-published-before",
                                           "count": withheld}]  # fmt: skip
    print(f"\n{err.strip()}")
    assert "release wa-2 withheld, nothing published" in err
    assert "cross-release ledger: slide published before in release wa-1" in err
    assert not [p for p in (target / "wa-2").rglob("*") if p.is_file()]  # nothing published
    # another registry (a new user, a new machine): the target's release is unknown to it
    other = f"sqlite:///{tmp_path}/other/registry.sqlite"
    third = spec(cohort, "wa-3", target)
    assert main([*cli(third, "--work-dir", tmp_path / "C"), "--registry-url", other]) == 2
    err = capsys.readouterr().err
    assert "already holds 1 release(s) the registry" in err and ": wa-1." in err
    assert "slidegate registry import" in err and "--new-registry" in err
    assert main(["registry", "import", str(target), "--registry-url", other]) == 0
    assert Registry(other).known_releases(str(target.resolve())) == {"wa-1"}
    assert Registry(other).release("wa-1")["key_id"] == record_key(registry_url)  # type: ignore[index]

    # the import read the published slides' fingerprints back: the same as recorded at release
    def prints(url: str) -> set[tuple[str, ...]]:
        return {r[:2] + r[3:5] for r in Registry(url).ledger_rows(exclude_release="")}

    assert len(prints(other)) == 4 and prints(other) == prints(registry_url)
    # --new-registry records them the same way and goes on: the ledger then stops the slides
    third = f"sqlite:///{tmp_path}/third/registry.sqlite"
    args = [*cli(spec(cohort, "wa-4", target), "--work-dir", tmp_path / "D")]
    assert main([*args, "--registry-url", third, "--new-registry"]) == exitcodes.WITHHELD
    err = capsys.readouterr().err
    assert "cross-release ledger: slide published before in release wa-1" in err
    # a different spec under the same release id is still refused
    moved = spec(cohort, "wa-1", tmp_path / "elsewhere")
    assert main([*cli(moved, "--work-dir", tmp_path / "A"), *reg]) == 2
    assert "published" in capsys.readouterr().err
    record = Registry(registry_url).release("wa-1")
    assert record is not None and record["status"] == "complete"


def record_key(url: str) -> str:
    record = Registry(url).release("wa-1")
    assert record is not None and len(record["key_id"]) == 12
    return str(record["key_id"])


def _cli_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its Dask workers in its process group
    )


def _env(registry_url: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "SLIDEGATE_REGISTRY_URL": registry_url}


def test_two_concurrent_releases_into_one_target(
    cohort: Any, prefect_server: Any, registry_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    path = spec(cohort, "cc-1", target)
    env = _env(registry_url)
    runs = [
        _cli_process(cli(path, "--work-dir", tmp_path / w), env, tmp_path / f"{w}.log")
        for w in ("A", "B")
    ]
    codes = [p.wait(timeout=600) for p in runs]
    logs = [(tmp_path / f"{w}.log").read_text() for w in ("A", "B")]
    print("\n" + "\n".join(line for log in logs for line in log.splitlines()[-2:]))
    published = [i for i, log in enumerate(logs) if "published to" in log]
    assert len(published) == 1 and codes[published[0]] == 0  # exactly one publishes
    other = logs[1 - published[0]]
    busy = "is being released into by release 'cc-1'" in other and codes[1 - published[0]] == 2
    assert busy or ("is complete at" in other and codes[1 - published[0]] == 0)
    store = open_store(str(target), Settings())
    assert verify_release(store, "cc-1") == []
    assert Registry(registry_url).release("cc-1")["status"] == "complete"  # type: ignore[index]


def _staged(work: Path, release: str) -> dict[str, int]:
    """Staged slide outputs -> modification time of their zarr.json (rewritten on conversion)."""
    staging = work / "releases" / release / "staging"
    return {p.name: (p / "zarr.json").stat().st_mtime_ns for p in staging.glob("*.ome.zarr")}


@pytest.mark.slow  # ~100 s per database (three releases, one killed): make test-all
def test_sigkill_during_conversion_then_rerun(
    cohort: Any, prefect_server: Any, registry_url: str, tmp_path: Path
) -> None:
    # an uninterrupted release, the reference
    base = f"sqlite:///{tmp_path}/base/registry.sqlite"
    path = spec(cohort, "kill-1", tmp_path / "uninterrupted")
    assert main([*cli(path, "--work-dir", tmp_path / "A"), "--registry-url", base]) == 0
    reference = json.loads((tmp_path / "uninterrupted" / "kill-1" / "manifest.json").read_text())
    # the same release id and key (the work area's copy hands it to the new registry), into
    # another target; killed with SIGKILL once the first slide is audited
    work = tmp_path / "W"
    (work / "releases" / "kill-1" / "private").mkdir(parents=True)
    key = tmp_path / "A" / "releases" / "kill-1" / "private" / "key"
    (work / "releases" / "kill-1" / "private" / "key").write_bytes(key.read_bytes())
    target = tmp_path / "target"
    path = spec(cohort, "kill-1", target)
    args = [*cli(path, "--work-dir", work)]
    env = _env(registry_url)
    run = _cli_process(args, env, tmp_path / "killed.log")
    reg = Registry(registry_url)
    deadline = time.monotonic() + 300
    while not reg.slide_states("kill-1") and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    done = reg.slide_states("kill-1")
    assert 1 <= len(done) < 4, (tmp_path / "killed.log").read_text()[-2000:]
    assert not (target / "kill-1" / "manifest.json").exists()
    # the registry after the SIGKILL: whole records only
    with reg.engine.begin() as conn:
        if reg.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    assert all(json.loads(s["report"])["status"] == "ok" for s in done.values())
    assert reg.release("kill-1")["status"] == "running"  # type: ignore[index]
    before = _staged(work, "kill-1")
    kept = {f"{p}.ome.zarr": before[f"{p}.ome.zarr"] for p in done}
    # the same command again
    rerun = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, capture_output=True
    )
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    after = _staged(work, "kill-1")
    converted = [name for name in after if after[name] != before.get(name)]
    print(f"\nkilled after {len(done)} audited slide(s); the rerun converted {len(converted)}")
    assert all(after[name] == mtime for name, mtime in kept.items())  # not converted again
    assert len(converted) == 4 - len(done)
    manifest = json.loads((target / "kill-1" / "manifest.json").read_text())
    strip = {"created"}
    assert {k: v for k, v in manifest.items() if k not in strip} == {
        k: v for k, v in reference.items() if k not in strip
    }
    assert reg.release("kill-1")["status"] == "complete"  # type: ignore[index]


def test_registry_key_from_a_prefect_secret_block(prefect_server: Any, tmp_path: Path) -> None:
    from prefect.blocks.system import Secret

    from flows.registry import resolve_registry_key
    from slidegate.errors import SpecError

    Secret(value="7a" * 32).save("registry-key-test", overwrite=True)
    url = f"sqlite:///{tmp_path}/reg/registry.sqlite"
    settings = resolve_registry_key(
        Settings(registry_url=url, registry_key_block="registry-key-test")
    )
    assert settings.registry_key is not None
    assert settings.registry_key.get_secret_value() == "7a" * 32
    assert "7a7a" not in repr(settings)  # masked
    reg = Registry.open(settings)
    reg.put_secret("study:x", b"k" * 32, "id")
    assert not (tmp_path / "reg" / "registry.sqlite.key").exists()  # no key file: the block's
    with pytest.raises(SpecError, match="registry key block 'no-such-block' not found"):
        resolve_registry_key(Settings(registry_url=url, registry_key_block="no-such-block"))
