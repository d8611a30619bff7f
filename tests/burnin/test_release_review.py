"""`burned_in: review` end to end: a release under `approval: auto` whose slides show text or a
barcode pauses at the steward's approval gate; the review artifact says where (slide, level,
box, shape), never what; approving publishes; the published release holds none of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.burnin.pictures import CASE_NUMBER
from tests.burnin.test_stage import _cohort
from tests.orchestration.conftest import REPO, SLIDEGATE, cli_env, slidegate, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _artifact(key: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, key
    return str(found[-1].data)


def test_review_pauses_an_auto_release_until_the_steward_answers(
    prefect_server, real_slides: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "cohort"
    spec = _cohort(root, real_slides, "restricted")  # restricted: burned_in review, approval auto
    env = cli_env(prefect_server.api_url)
    work = tmp_path / "work"
    proc = subprocess.Popen(
        [*SLIDEGATE, "release", str(spec), "--work-dir", str(work), "--workers", "1",
         "--registry-url", f"sqlite:///{tmp_path / 'reg.sqlite'}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        run = wait_for_run("release-burn-restricted", "PAUSED", timeout=420)
        review = _artifact("burn-restricted-review")
        assert "Burned-in text or barcodes" in review and "barcode:QRCode" in review
        assert CASE_NUMBER not in review and "04417" not in review and "HS12" not in review
        previews = list((work / "releases" / "burn-restricted" / "burnin").glob("*.png"))
        assert len(previews) >= 3
        answered = slidegate("approve", str(run.id), env=env)
        assert answered.returncode == 0, answered.stderr
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode in (0, 4), out[-3000:]
    target = root / "target" / "burn-restricted"
    assert (target / "manifest.json").is_file(), out[-3000:]
    published = {p.name for p in target.rglob("*.png")}
    assert not published & {p.name for p in previews}  # previews stay in the work area
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".md", ".csv", ".html"}:
            text = path.read_text("utf-8", "replace")
            assert CASE_NUMBER not in text and "HS12" not in text, path
