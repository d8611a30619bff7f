"""The scheduled incremental export of a collection (deployment `incremental-export`).

Each run releases the collection's slides not yet published, as the release
`<collection>-<YYYY-MM-DD>` (see slidegate/collection.py), through `release_cohort` as a subflow
(same gates, approval and artifacts). The risk model scores the whole collection so far: the
export's summary says when already-published patients are now above the profile's limit.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.artifacts import create_markdown_artifact

from flows.artifacts import tag_current_run
from flows.progress import artifact_key
from slidegate.collection import (
    Collection,
    at_risk_published,
    load_collection,
    plan_export,
    published_risk_rows,
    published_slide_ids,
    record_export,
)
from slidegate.errors import PolicyViolation
from slidegate.profile import load_policies
from slidegate.pseudonym import load_or_create_key
from slidegate.settings import Settings


def _run_name() -> str:
    from prefect.runtime import flow_run

    from slidegate import safeyaml

    spec = str(flow_run.parameters.get("collection", ""))
    try:
        name = str(safeyaml.load_file(Path(spec))["collection"])
    except Exception:
        name = Path(spec).stem or "collection"
    return f"export-{name}"


@flow(name="export-collection", flow_run_name=_run_name, persist_result=False)
def export_collection(
    collection: str, day: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Release the slides of the collection at `collection` (a collection spec) not yet out."""
    logger = get_run_logger()
    settings = settings or Settings.from_env(os.environ)  # flows are an edge of the system
    coll = load_collection(Path(collection), settings.work_dir)
    today = dt.date.fromisoformat(day) if day else dt.datetime.now(dt.UTC).date()
    release_work = settings.work_dir.resolve() / "releases"
    taken = {p.name for p in release_work.iterdir()} if release_work.is_dir() else set()
    plan = plan_export(coll, today, release_work, taken)
    tag_current_run(f"collection:{coll.name}", f"profile:{coll.spec.profile}")
    if not plan.new:
        create_markdown_artifact(
            f"# Export of `{coll.name}`\n\nNo new slides since the last export "
            f"({plan.published_before} published so far); nothing to release.\n",
            key=artifact_key(coll.name, "export"),
        )
        logger.info("collection %s: no new slides", coll.name)
        return {"collection": coll.name, "release": None, "new": 0, "published": 0}

    logger.info(
        "collection %s: %d new slide(s) -> release %s", coll.name, len(plan.new), plan.release
    )
    from flows.release import dask_runner, release_cohort

    with tags(f"collection:{coll.name}", f"profile:{coll.spec.profile}", "export"):
        try:
            result = release_cohort.with_options(task_runner=dask_runner(settings))(
                spec=str(plan.spec_path), settings=settings
            )
        except PolicyViolation as exc:  # withheld by the gates: nothing published this time
            logger.warning("release %s withheld: %s", plan.release, exc.reason)
            result = {"release": plan.release, "published": False, "withheld": True}
    published: list[str] = []
    at_risk: list[str] = []
    work = release_work / plan.release
    if result.get("published"):
        key = load_or_create_key(work / "private" / "key")
        published = published_slide_ids(
            work / "reports" / "slides.json", {s: key("s", s) for s in plan.new}
        )
        record_export(coll, plan.release, today, published)
        at_risk = _published_at_risk(coll, settings, work)
    create_markdown_artifact(
        _summary(coll, plan.release, len(plan.new), len(published), result, at_risk),
        key=artifact_key(coll.name, "export"),
    )
    return {
        "collection": coll.name,
        "release": plan.release,
        "new": len(plan.new),
        "published": len(published),
        "rejected": bool(result.get("rejected")),
        "published_patients_at_risk": len(at_risk),
    }


def _published_at_risk(coll: Collection, settings: Settings, work: Path) -> list[str]:
    """Patients published by earlier exports that this export's risk report puts over the limit."""
    policies = load_policies(settings.policies_dir, coll.spec.profile)
    rows = published_risk_rows(
        work, policies.metadata, load_or_create_key(work / "private" / "key")
    )
    if rows is None or not (work / "reports" / "risk.json").is_file():
        return []
    patients = rows[policies.risk.patient_column].tolist()
    return at_risk_published(work / "reports" / "risk.json", patients)


def _summary(
    coll: Collection, release: str, new: int, published: int, result: dict[str, Any], at_risk: list
) -> str:
    if result.get("rejected"):
        outcome = "rejected by the steward or the approval timeout: nothing published"
    elif result.get("published"):
        outcome = f"published {published} new slide(s) as `{release}`"
    else:
        outcome = "withheld by the release gates: nothing published (see the release's summary)"
    lines = [
        f"# Export of `{coll.name}`",
        "",
        f"- release: `{release}`",
        f"- new slides since the last export: {new}",
        f"- outcome: {outcome}",
        f"- profile: `{coll.spec.profile}`; target: `{coll.spec.target}`",
    ]
    if at_risk:
        lines += [
            "",
            f"**Warning:** with this export, {len(at_risk)} patient(s) published earlier are now "
            "above the profile's risk limit (the risk is scored on the whole collection). They "
            "are already out; review the collection (e.g. restrict access, withdraw slides).",
        ]
    return "\n".join(lines) + "\n"
