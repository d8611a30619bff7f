"""Acceptance (issue 11, item 2): canaries planted where a release could carry them, and the
egress gate stops each from every release-level file.

Planted, with tifffile and plain files (not slidegate.synth):
- as a source field name: an Aperio ImageDescription key (slide A);
- in a quarantine-triggering value: a kept technical field holding a listed canary (slide B is
  quarantined by the audit; its reason must not carry the value);
- in a kept free-text field: `ICC Profile` (slide C, same: quarantined); both values fit their
  keep rule's value pattern (a number, a token): one that does not is dropped by the plan
  before it could be published (tests/deid/test_values.py);
- in a cohort.csv column the policy drops (`note`);
- in the source folder name (slide A's folder).
Only the two values of slides B and C are listed in canaries.json: the gate finds the others
by its own rules (field name, dropped column, source name).

One release runs; then (1) no planted value is in any published byte or key (tests/leaksearch.py),
and (2) each release-level file it published, with each planted value put back into it (in
several encodings), is refused by the release's gate with the value's rule, naming the file and
the rule, never the value.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from slidegate.errors import EgressBlocked
from slidegate.models import DeidPlan, SlideReport
from slidegate.publish.stores import LocalStore
from slidegate.settings import DEFAULT_POLICIES_DIR, Settings
from tests.leaksearch import find_leaks

pytestmark = pytest.mark.integration

RELEASE = "egress-canaries"
NAME = "CANARY-KEYNAME-77b2"  # an ImageDescription key
QUAR = "7319.04583"  # a kept technical value that fits its number pattern: quarantines B
KEPT = "CANARY-KEPT-8d21"  # a kept token (fits its pattern): quarantines slide C
NOTE = "CANARY-NOTE-41f0"  # a cohort column the policy drops
FOLDER = "CANARY-FOLDER-5a1e"  # slide A's source folder
PLANTED = {"name": NAME, "quar": QUAR, "kept": KEPT, "note": NOTE, "folder": FOLDER}
RULES = {
    "name": "egress.field-name",
    "quar": "egress.canary",
    "kept": "egress.canary",
    "note": "egress.cohort-dropped-column",
    "folder": "egress.source-name",
}
HEAD = "Aperio Image Library v12.0.15 \r\n"


def write_svs(path: Path, seed: int, extra: str, appmag: str = "20") -> None:
    """Two JPEG-tiled pyramid pages with an Aperio description; `extra`: more `|k = v` pairs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:512, 0:768]
    base = np.stack([(x // 3) % 256, (y // 2) % 256, ((x + y) // 5) % 256], axis=-1)
    level0 = np.clip(base + rng.integers(0, 24, base.shape), 0, 255).astype(np.uint8)
    level1 = level0.reshape(256, 2, 384, 2, 3).mean(axis=(1, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tail = f"|AppMag = {appmag}|MPP = 0.25|Date = 03/05/24|Filename = case{seed}x{extra}"
    with tifffile.TiffWriter(path) as tif:
        for img, desc in (
            (level0, f"{HEAD}768x512 [0,0 768x512] (256x256) JPEG/RGB Q=90{tail}"),
            (level1, f"{HEAD}768x512 -> 384x256 - {tail}"),
        ):
            tif.write(
                img,
                tile=(256, 256),
                compression="jpeg",
                photometric="rgb",
                description=desc,
                metadata=None,
            )


def run_release(tmp_path: Path) -> tuple[Path, Settings, Path]:
    from flows.release import dask_runner, release_cohort

    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    cohort_policy = policies / "metadata" / "cohort.yaml"
    text = cohort_policy.read_text()
    cohort_policy.write_text(text.replace("columns:\n", "columns:\n  note: {action: drop}\n", 1))
    src = tmp_path / "slides"
    write_svs(src / FOLDER / "a.svs", 1, f"|{NAME} = 5")
    write_svs(src / "b.svs", 2, "", appmag=QUAR)
    write_svs(src / "c.svs", 3, f"|ICC Profile = {KEPT}")
    (tmp_path / "canaries.json").write_text(
        json.dumps({"canaries": [{"field": "q", "value": QUAR}, {"field": "k", "value": KEPT}]})
    )
    rows = [f"{FOLDER}/a.svs", "b.svs", "c.svs"]
    (tmp_path / "cohort.csv").write_text(
        "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date,note\n"
        + "".join(
            f"{s},EGPAT{i},EGBLK{i},EGSPC{i},{41 + i},F,C18.7,colon,2021-01-0{i + 1},{NOTE}\n"
            for i, s in enumerate(rows)
        )
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
        "target: out\ncanaries: canaries.json\n"
    )
    settings = Settings(work_dir=tmp_path / "work", policies_dir=policies, n_workers=1)
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), settings=settings
    )
    assert result["published"] is True
    assert result["counts"] == {"approved": 1, "withheld": 0, "quarantined": 2}
    return spec, settings, tmp_path / "out" / RELEASE


def release_gate_of(spec: Path, settings: Settings, out: Path):  # type: ignore[no-untyped-def]
    """The gate finalize used: the same context, the same slide reports (from the work area)."""
    from slidegate.stages.context import prepare_release
    from slidegate.stages.gate import release_gate

    ctx = prepare_release(spec, settings)
    published = {r["slide"]: r for r in json.loads((out / "reports" / "slides.json").read_text())}
    reports = []
    for slide in ctx.slides:
        p = ctx.pseudonyms[slide.slide_id]
        plan_path = ctx.plan_path(p)
        reports.append(
            SlideReport(
                slide_id=slide.slide_id,
                pseudonym=p,
                stage="decide",
                status=published[p]["status"],
                facts_path=str(ctx.facts_path(p)),
                plan=DeidPlan.model_validate_json(plan_path.read_text()),
            )
        )
    return release_gate(ctx, LocalStore(settings.work_dir / "scratch-target"), reports)


def plant(data: bytes, value: str, i: int, key: str) -> bytes:
    """`value` put into a copy of a published file, in one of several encodings."""
    if key.endswith(".json") and i % 2 == 0:
        doc = json.loads(data)
        blob = base64.b64encode(f"note: {value}".encode()).decode()
        return json.dumps({"wrapped": doc, "blob": blob}).encode()
    encodings = [
        value.upper().encode("utf-8"),
        value.encode("utf-16-le"),
        value.encode("utf-16-be"),
        value.encode().hex().encode(),
    ]
    return data + b"\n" + encodings[i % len(encodings)] + b"\n"


def test_planted_canaries_never_leave(prefect_server: object, tmp_path: Path) -> None:
    spec, settings, out = run_release(tmp_path)

    # (1) nothing planted is in any published byte or key, in any encoding
    assert find_leaks(out, PLANTED) == []
    slides = json.loads((out / "reports" / "slides.json").read_text())
    reasons = [s["reason"] or "" for s in slides if s["status"] == "quarantined"]
    # named by canary number (canaries.json order), never by value or field name
    assert sorted(reasons) == [
        f"audit: identifying value found in output (canary#{i})" for i in (1, 2)
    ]

    # (2) the release's gate refuses every release-level file holding any planted value
    gate = release_gate_of(spec, settings, out)
    level = [p for p in sorted(out.rglob("*")) if p.is_file() and "slides" not in p.parts]
    assert {"cohort.csv", "README.md", "manifest.json", "SHA256SUMS"} <= {p.name for p in level}
    readme = (out / "README.md").read_text(encoding="utf-8")  # the release README (issue 14)
    assert all(v.lower() not in readme.lower() for v in PLANTED.values())
    assert any(p.suffix == ".html" for p in level)  # Data Docs
    scratch = tmp_path / "planted"
    scratch.mkdir()
    for n, path in enumerate(level):
        key = f"{RELEASE}/{path.relative_to(out).as_posix()}"
        gate.check_file(key, path)  # as published: clean, no false alarm
        for i, (what, value) in enumerate(PLANTED.items()):
            bad = scratch / f"{n}-{what}{path.suffix}"
            bad.write_bytes(plant(path.read_bytes(), value, i + n, path.name))
            with pytest.raises(EgressBlocked) as err:
                gate.check_file(key, bad)
            assert RULES[what] in err.value.rules, (key, what)
            message = str(err.value)
            assert key in message and value.lower() not in message.lower()
    # and every key: a planted value in an object key is refused too
    for what, value in PLANTED.items():
        with pytest.raises(EgressBlocked) as err:
            gate.check_key(f"{RELEASE}/reports/{value}.json")
        assert RULES[what] in err.value.rules
