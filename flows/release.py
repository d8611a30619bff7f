"""The `release_cohort` flow: DESIGN section 2, every slide-level stage fanned out on Dask."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect_dask import DaskTaskRunner

from flows.progress import ReleaseProgress, artifact_key
from slidegate.errors import PolicyViolation
from slidegate.models import SlideReport
from slidegate.settings import Settings
from slidegate.stages.context import ReleaseContext, prepare_release
from slidegate.stages.slide import failed
from slidegate.summary import release_markdown, slide_rows
from tasks.cohort import decide_task
from tasks.publish import check_target_task, finalize_task, publish_slide_task
from tasks.slide import audit_task, deidentify_task, inventory_task


def dask_runner(settings: Settings) -> Any:
    # typed Any: prefect_dask's DaskTaskRunner is not declared as TaskRunner[PrefectFuture]
    """An existing scheduler when one is given, else a LocalCluster bound to loopback."""
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.n_workers,
            "threads_per_worker": settings.threads_per_worker,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
        }
    )


def _run_name() -> str:
    import yaml
    from prefect.runtime import flow_run

    spec = flow_run.parameters.get("spec", "")
    try:
        release = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))["release"]
    except Exception:
        release = Path(spec).stem or "release"
    return f"release-{release}"


@flow(
    name="release-cohort",
    flow_run_name=_run_name,
    persist_result=False,
    task_runner=dask_runner(Settings()),
)
def release_cohort(
    spec: str, dry_run: bool = False, settings: Settings | None = None
) -> dict[str, Any]:
    """Release the cohort described by the release spec at `spec`."""
    logger = get_run_logger()
    settings = settings or Settings.from_env(os.environ)  # flows are an edge of the system
    ctx = prepare_release(Path(spec), settings)
    logger.info("release %s: %d slides, profile %s", ctx.release, len(ctx.slides), ctx.profile)
    target = None if dry_run else check_target_task(ctx)

    reports = _process_slides(ctx)
    bad = [r for r in reports if r.status == "quarantined"]
    if bad and ctx.policies.profile.on_bad_slide == "fail":
        raise PolicyViolation(
            f"release {ctx.release}: {len(bad)} slide(s) could not be processed and the profile "
            f"says on_bad_slide: fail; see the quarantine reasons ({bad[0].reason}, ...)"
        )
    outcome = decide_task(ctx, reports)
    summary_args: dict[str, Any] = {
        "figures": outcome.figures,
        "blocking": outcome.blocking_failures,
        "warnings": outcome.warnings,
    }
    create_table_artifact(
        slide_rows(outcome.slides),
        key=artifact_key(ctx.release, "slides"),
        description="per-slide outcome (pseudonyms only)",
    )
    if dry_run or not outcome.releasable:
        create_markdown_artifact(
            release_markdown(
                ctx.release,
                ctx.profile,
                outcome.slides,
                target=None,
                dry_run=dry_run,
                **summary_args,
            ),
            key=artifact_key(ctx.release, "summary"),
        )
        if not dry_run:
            raise PolicyViolation(_withheld_message(ctx, outcome))
        logger.info("dry run: plan and reports are in %s", ctx.work)
        return {
            "release": ctx.release,
            "published": False,
            "work": str(ctx.work),
            "counts": _counts(outcome.slides),
        }

    uploads = [publish_slide_task.submit(ctx, s) for s in outcome.approved]
    records = [rec for fut in uploads for rec in fut.result()]
    manifest = finalize_task(ctx, outcome, records)
    create_markdown_artifact(
        release_markdown(ctx.release, ctx.profile, outcome.slides, target=target, **summary_args),
        key=artifact_key(ctx.release, "summary"),
    )
    return {
        "release": ctx.release,
        "published": True,
        "target": target,
        "objects": len(cast(list[object], manifest.get("objects", []))),
        "counts": _counts(outcome.slides),
    }


def _process_slides(ctx: ReleaseContext) -> list[SlideReport]:
    """inventory -> deidentify -> audit per slide, chained by futures: no barrier per stage."""
    chains: dict[str, PrefectFuture[SlideReport]] = {}
    for slide in ctx.slides:
        pseudonym = ctx.pseudonyms[slide.slide_id]
        inv = inventory_task.submit(ctx, slide, pseudonym)
        deid = deidentify_task.submit(ctx, inv)  # type: ignore[call-overload]
        chains[slide.slide_id] = audit_task.submit(ctx, deid)
    progress = ReleaseProgress(ctx.release, len(chains))
    try:
        for _ in as_completed(list(chains.values())):
            progress.advance()
    finally:
        progress.close()
    reports = []
    log = logging.getLogger("slidegate.flow")
    for slide_id, fut in chains.items():
        state = fut.state
        if state.is_completed():
            reports.append(fut.result())
        else:
            exc = _exception(fut)
            log.error("slide %s failed after retries: %s", slide_id, type(exc).__name__)
            reports.append(failed(slide_id, ctx.pseudonyms[slide_id], exc))
    return reports


def _exception(fut: PrefectFuture[SlideReport]) -> BaseException | None:
    try:
        fut.result(raise_on_failure=True)
    except BaseException as exc:  # the task's own exception (or an upstream one)
        return exc
    return None


def _counts(slides: Any) -> dict[str, int]:
    return {
        st: sum(s.status == st for s in slides) for st in ("approved", "withheld", "quarantined")
    }


def _withheld_message(ctx: ReleaseContext, outcome: Any) -> str:
    why = []
    if not outcome.validation_passed:
        why.append("blocking validation failures: " + "; ".join(outcome.blocking_failures))
    if not outcome.risk_passed:
        why.append("the cohort's re-identification risk is above the profile's limits")
    if not outcome.approved:
        why.append("no slide was approved")
    return (
        f"release {ctx.release} withheld, nothing published: {' / '.join(why)}. "
        f"Reports are in {ctx.reports_dir}; fix the cohort or the policy and run again"
    )
