"""The `release_cohort` flow: DESIGN section 2, every slide-level stage fanned out on Dask."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.futures import as_completed

from flows.approval import approval_gate
from flows.artifacts import (
    dashboard_artifact,
    published_note,
    stage_artifacts,
    tag_current_run,
)
from flows.batches import batch_slides, publish_batches
from flows.clusters import with_spec_cluster
from flows.credentials import resolve_credentials
from flows.progress import ReleaseProgress, artifact_key
from flows.registry import (
    begin_release,
    complete_result,
    registry_of,
    resolve_registry_key,
)
from flows.resilience import (
    collect_uploads,
    explain,
    publish_failed,
    publish_options,
)
from flows.runner import RunSettingsRunner, shipping, start_cluster_early, use_run_settings
from flows.runner import dask_runner as dask_runner  # where callers import it from
from slidegate.burnin.gate import needs_review
from slidegate.errors import PolicyViolation, TransientIOError
from slidegate.ledger import record_release
from slidegate.models import SlideReport
from slidegate.registry.resume import remember, resumed
from slidegate.settings import Settings
from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext, prepare_release
from slidegate.stages.slide import failed
from slidegate.summary import release_markdown, slide_rows
from tasks.cohort import decide_task
from tasks.publish import check_target_task, finalize_task, publish_batch_task
from tasks.shipping import Shared
from tasks.slide import process_slide_task


def _run_name() -> str:
    from prefect.runtime import flow_run

    from slidegate import safeyaml

    spec = flow_run.parameters.get("spec", "")
    try:  # the strict loader: a hostile spec is refused here too, not expanded
        release = str(safeyaml.load_file(Path(spec))["release"])
    except Exception:
        release = Path(spec).stem or "release"
    return f"release-{release}"


@flow(
    name="release-cohort",
    flow_run_name=_run_name,
    persist_result=False,
    task_runner=RunSettingsRunner(),  # the run's settings, not the importing process's
)
def release_cohort(
    spec: str, dry_run: bool = False, settings: Settings | None = None, new_registry: bool = False
) -> dict[str, Any]:
    """Release the cohort described by the release spec at `spec`.

    `new_registry`: the target holds releases this registry does not know; record them and go
    on (otherwise the release stops before any work)."""
    logger = get_run_logger()
    if settings is None:  # a deployment run: the environment and the spec's `cluster:`
        settings = with_spec_cluster(Settings.from_env(os.environ), Path(spec))
    use_run_settings(settings)  # the default task runner becomes this run's Dask runner
    starting = start_cluster_early()  # workers start and import while the release is prepared
    try:
        settings = resolve_credentials(settings)  # a Prefect block's S3 keys, masked
        settings = resolve_registry_key(settings)  # the registry key from a Secret block
        ctx = prepare_release(Path(spec), settings)
    finally:
        if starting is not None:
            starting.join()
    logger.info("release %s: %d slides, profile %s", ctx.release, len(ctx.slides), ctx.profile)
    if dry_run:
        with shipping() as ship:
            return _release(ctx, ship, dry_run=True)
    pre, lock = begin_release(ctx, new_registry)
    if lock is None:  # published before from this spec: verified, nothing to do
        logger.info("release %s is already complete in its target (verified)", ctx.release)
        return complete_result(ctx, pre)
    try:
        with shipping() as ship:
            return _release(ctx, ship, dry_run=False)
    finally:
        lock.release_lock()


def _release(
    ctx: ReleaseContext, ship: Callable[[Shared], Shared], dry_run: bool
) -> dict[str, Any]:
    logger = get_run_logger()
    tag_current_run(f"profile:{ctx.profile}")
    dashboard = dashboard_artifact(ctx.release)
    target = None if dry_run else check_target_task(ctx)

    reports = _process_slides(ctx, ship(Shared(ctx)))
    bad = [r for r in reports if r.status == "quarantined"]
    if bad and ctx.policies.profile.on_bad_slide == "fail":
        raise PolicyViolation(
            f"release {ctx.release}: {len(bad)} slide(s) could not be processed and the profile "
            f"says on_bad_slide: fail; see the quarantine reasons ({bad[0].reason}, ...)"
        )
    outcome = decide_task(ctx, reports)
    stage_artifacts(ctx.release, ctx.work, ctx.reports_dir, reports)
    _risk_artifacts(ctx)
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
    decisions = {s.pseudonym: s.status for s in outcome.slides}
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
            registry_of(ctx).set_status(ctx.release, "withheld", decisions=decisions)
            raise PolicyViolation(_withheld_message(ctx, outcome))
        logger.info("dry run: plan and reports are in %s", ctx.work)
        return {
            "release": ctx.release,
            "published": False,
            "work": str(ctx.work),
            "counts": _counts(outcome.slides),
        }

    if ctx.policies.profile.approval == "manual" or needs_review(outcome.slides):  # burnin
        decision = approval_gate(ctx, outcome)  # pauses until a steward answers (or timeout)
        verdict = "approved" if decision.approved else "rejected"
        registry_of(ctx).record_approval(ctx.release, verdict, decision.by)
        if not decision.approved:
            registry_of(ctx).set_status(ctx.release, "rejected", decisions=decisions)
            create_markdown_artifact(
                release_markdown(
                    ctx.release, ctx.profile, outcome.slides, target=None, **summary_args
                )
                + f"\n**Rejected** by the {decision.by}; nothing published. The reason is in "
                "`approval.json` in the private work area.\n",
                key=artifact_key(ctx.release, "summary"),
            )
            logger.info("release %s rejected: nothing published", ctx.release)
            return {
                "release": ctx.release,
                "published": False,
                "rejected": True,
                "work": str(ctx.work),
                "counts": _counts(outcome.slides),
            }
    retrying = publish_options(ctx.settings)  # storage hiccups: retries with backoff
    publish = publish_batch_task.with_options(**retrying)
    batches = publish_batches(outcome.approved)  # one task run per K small slides
    shared = ship(Shared(ctx))  # pickled once here, sent once per worker
    uploads = [publish.submit(shared, batch_slides(ctx, b), b) for b in batches]
    records = collect_uploads(ctx, outcome.approved, uploads, [len(b) for b in batches])
    # the ledger rows and the status `publishing` before the manifest, in one transaction: a
    # run killed after the manifest is still known to the registry
    record_release(ctx.settings, ctx.work, ctx.release, ctx.key_id, "publishing")
    try:
        manifest = finalize_task.with_options(**retrying)(ctx, outcome, records)
    except TransientIOError as exc:
        raise publish_failed(ctx, exc, "the tables, reports and manifest") from None
    registry_of(ctx).set_status(ctx.release, "complete", decisions=decisions)
    create_markdown_artifact(
        release_markdown(ctx.release, ctx.profile, outcome.slides, target=target, **summary_args)
        + published_note(target, ctx.release, manifest, dashboard),
        key=artifact_key(ctx.release, "summary"),
    )
    return {
        "release": ctx.release,
        "published": True,
        "target": target,
        "objects": len(cast(list[object], manifest.get("objects", []))),
        "counts": _counts(outcome.slides),
    }


def _process_slides(ctx: ReleaseContext, shared: Shared) -> list[SlideReport]:
    """One task run per slide (inventory -> deidentify -> audit inside it), all submitted at
    once: Dask runs them as workers free up; the report of each is read as it finishes."""
    # no Prefect task timeout: in a worker thread it cannot interrupt a read (Prefect warns
    # once per slide); the time and memory bound of the slide's child process does
    process = process_slide_task
    registry = registry_of(ctx)
    states = registry.slide_states(ctx.release)
    done = {s.slide_id: r for s in ctx.slides if (r := resumed(states.get(_p(ctx, s)), ctx, s))}
    log = logging.getLogger("slidegate.flow")
    if done:
        log.info("resume: %d slide(s) audited in an earlier run are not converted again", len(done))
    todo = [s for s in ctx.slides if s.slide_id not in done]
    futures = {  # each task's own inputs: its slide and pseudonym
        slide.slide_id: process.submit(shared, slide, _p(ctx, slide)) for slide in todo
    }
    by_future = {id(futures[s.slide_id]): s for s in todo}
    outcomes: dict[str, SlideReport | BaseException] = {}
    progress = ReleaseProgress(ctx.release, len(ctx.slides))
    try:
        for _ in done:
            progress.advance()
        for fut in as_completed(list(futures.values())):
            progress.advance()
            slide = by_future.pop(id(fut))
            outcomes[slide.slide_id] = _outcome(fut)
            report = outcomes[slide.slide_id]
            if isinstance(report, SlideReport):  # audited: recorded at once (resume)
                remember(registry, ctx, slide, report)
            _release_result(fut)  # read: the worker may drop it (not kept to the end)
    finally:
        progress.close()
    reports = [done[s.slide_id] for s in ctx.slides if s.slide_id in done]
    for slide_id in (s.slide_id for s in todo):
        outcome = outcomes.get(slide_id)
        if outcome is None:  # not completed (as_completed ended early): wait for it here
            outcome = _outcome(futures[slide_id])
        if isinstance(outcome, SlideReport):
            reports.append(outcome)
            continue
        exc = explain(outcome, ctx.settings)  # the task's own exception, after its retries
        log.error("slide %s failed after retries: %s", ctx.pseudonyms[slide_id], type(exc).__name__)
        reports.append(failed(slide_id, ctx.pseudonyms[slide_id], exc))
    order = {s.slide_id: i for i, s in enumerate(ctx.slides)}
    return sorted(reports, key=lambda r: order[r.slide_id])


def _release_result(fut: Any) -> None:
    """Tell Dask the flow no longer needs a task's result (it is read): the worker frees it,
    instead of holding every slide's report until the flow ends (worker RSS grew with the
    cohort)."""
    release = getattr(getattr(fut, "wrapped_future", None), "release", None)
    if callable(release):
        release()


def _outcome(fut: Any) -> SlideReport | BaseException:
    """The slide task's report, or its exception after its retries (the result, not
    `fut.state`: right after as_completed the state can still lag behind)."""
    try:
        return cast(SlideReport, fut.result(raise_on_failure=True))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as raised:
        return raised


def _p(ctx: ReleaseContext, slide: CohortSlide) -> str:
    return ctx.pseudonyms[slide.slide_id]


def _risk_artifacts(ctx: ReleaseContext) -> None:
    """The risk report as Prefect artifacts: markdown, per-patient table, plot (PHI-free)."""
    import base64
    import json

    reports = ctx.reports_dir
    if (reports / "risk.md").is_file():
        create_markdown_artifact(
            (reports / "risk.md").read_text("utf-8"), key=artifact_key(ctx.release, "risk")
        )
    if (reports / "risk.json").is_file():
        patients = json.loads((reports / "risk.json").read_text("utf-8")).get("patients", [])
        create_table_artifact(
            patients,
            key=artifact_key(ctx.release, "risk-patients"),
            description="risk per patient (pseudonyms only)",
        )
    if (reports / "risk.png").is_file():
        data = base64.b64encode((reports / "risk.png").read_bytes()).decode("ascii")
        create_image_artifact(
            f"data:image/png;base64,{data}",
            key=artifact_key(ctx.release, "risk-plot"),
            description="R per patient before/after mitigation; V_pi against chance",
        )


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
    ledger = [s for s in outcome.slides if s.status == "withheld" and "ledger:" in (s.reason or "")]
    if ledger:  # the cross-release ledger (the registry): published before, whatever work area
        why.append(f"{len(ledger)} slide(s) held back by the cross-release {ledger[0].reason}")
    if not outcome.approved:
        why.append("no slide was approved")
    return (
        f"release {ctx.release} withheld, nothing published: {' / '.join(why)}. "
        f"Reports are in {ctx.reports_dir}; fix the cohort or the policy and run again"
    )
