"""The bound at its call site (stages.slide, no orchestrator): a crafted slide whose only
defect is that decoding it needs 805 MB is stopped by the child's address-space bound and
quarantined with that reason; a good slide in the same run goes through, in the same reused
child process."""

from __future__ import annotations

from pathlib import Path

from slidegate.settings import Settings
from slidegate.stages import slide as stages
from slidegate.stages.context import ReleaseContext, prepare_release
from tests.fuzz.craft import deflate_bomb
from tests.releasing import COHORT_HEADER

MEMORY_MB = 1024  # the child's imports take ~350 MB of it


def _release(tmp_path: Path, source: Path, names: list[str]) -> ReleaseContext:
    """A restricted release of `names` under `source`, its own registry, the test's bound."""
    rows = [f"{n},P{i},B{i},S{i},5{i},F,C50.9,breast,2020-01-0{i}" for i, n in enumerate(names, 1)]
    (tmp_path / "cohort.csv").write_text(COHORT_HEADER + "".join(f"{r}\n" for r in rows))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"release: bound-1\nsource: {source}\ncohort: cohort.csv\nprofile: restricted\n"
        "target: out\n"
    )
    settings = Settings(
        work_dir=tmp_path / "work",
        registry_url=f"sqlite:///{tmp_path / 'registry.sqlite'}",
        slide_memory_mb=MEMORY_MB,
        slide_timeout_s=120,
    )
    return prepare_release(spec, settings)


def test_bomb_stopped_by_the_memory_bound_good_slide_converted(
    real_slides: Path, tmp_path: Path
) -> None:
    source = tmp_path / "slides"
    source.mkdir()
    deflate_bomb(source / "bomb.tiff")
    (source / "good.tiff").write_bytes((real_slides / "generic-tiff/boxes.tiff").read_bytes())
    ctx = _release(tmp_path, source, ["bomb.tiff", "good.tiff"])
    reports = {s.slide_id: stages.deidentify(ctx, stages.inventory(ctx, s)) for s in ctx.slides}
    bomb, good = reports["bomb.tiff"], reports["good.tiff"]
    assert bomb.status == "quarantined" and bomb.stage == "deidentify"
    assert bomb.reason == f"limit: memory bound exceeded ({MEMORY_MB} MiB per slide)"
    assert not ctx.staging_path(bomb.pseudonym).exists()  # no partial output stays
    assert good.status == "ok" and good.output_path is not None
    assert (Path(good.output_path) / "zarr.json").is_file()


def test_isolation_off_runs_in_process(real_slides: Path, tmp_path: Path) -> None:
    """`slide_isolation: off` is the unbounded path (debugging): the same facts, no child."""
    from slidegate.bounded import Bound, run_bounded
    from slidegate.formats import read_facts

    path = real_slides / "generic-tiff/boxes.tiff"
    off = Bound.of(Settings(slide_isolation="off"))
    on = Bound.of(Settings())
    assert not off.isolated and on.isolated and on.memory_mb == 8192
    assert run_bounded(off, "s", read_facts, path, "s") == run_bounded(
        on, "s", read_facts, path, "s"
    )


def test_audit_reads_of_the_source_are_bounded(real_slides: Path, tmp_path: Path) -> None:
    """The audit re-reads the source for its pixel check: under the same bound as conversion.
    A source that turns into a decompression bomb between conversion and audit (an object
    replaced on the store, a decoder path only the re-open takes) quarantines the slide at
    audit, its decode stopped by the bound; the good slide's audit passes in the same child."""
    source = tmp_path / "slides"
    source.mkdir()
    for name in ("a.tiff", "b.tiff"):
        (source / name).write_bytes((real_slides / "generic-tiff/boxes.tiff").read_bytes())
    ctx = _release(tmp_path, source, ["a.tiff", "b.tiff"])
    staged = {s.slide_id: stages.deidentify(ctx, stages.inventory(ctx, s)) for s in ctx.slides}
    assert all(r.status == "ok" for r in staged.values())
    # what the audit's re-open will read: level 0's shape, one 805 MB tile
    deflate_bomb(source / "b.tiff", image=(300, 250))
    good, bomb = stages.audit(ctx, staged["a.tiff"]), stages.audit(ctx, staged["b.tiff"])
    assert good.status == "ok", good.reason
    assert bomb.status == "quarantined" and bomb.stage == "audit"
    # the decode ran out of the child's address space (in the worker it would have succeeded)
    assert bomb.reason is not None and "level 0: pixels could not be compared (MemoryError)" in (
        bomb.reason
    )
