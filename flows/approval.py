"""The steward's approval gate: the flow pauses before publishing until someone answers.

With `approval: manual` in the profile, `release_cohort` calls `approval_gate` after the cohort
is decided. The flow run pauses (Prefect `pause_flow_run` with a typed input) and shows the risk
and validation summary as an artifact; a steward answers in the Prefect UI (the run's Resume
form) or with `slidegate approve RUN` / `slidegate reject RUN --reason ...` (`answer` below).
No answer within `approval_timeout_days` is a rejection. The decision, with its reason, is kept
in the private work area (`approval.json`); a rejected release publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from flows.progress import artifact_key
from slidegate.burnin.gate import review_lines
from slidegate.errors import SlidegateError

#: how often a paused run checks for an answer (seconds)
POLL_SECONDS = 3


class ApprovalInput(RunInput):
    """The steward's answer (the Resume form in the Prefect UI)."""

    approve: bool = False
    reason: str = ""
    approver: str = ""  # who answers (the UI form asks for a name; the CLI sends the OS user)
    via: str = "ui"  # "ui" (the Resume form) or "cli" (`slidegate approve/reject`)


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    reason: str
    by: str  # the approver and how they answered ("alice (cli)", "unnamed (ui)") or "timeout"
    at: str  # ISO timestamp (UTC)


def approval_gate(ctx: Any, outcome: Any) -> ApprovalDecision:
    """Show the review artifact, pause until answered or timed out, record the decision."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    profile = ctx.policies.profile
    days = float(profile.approval_timeout_days)
    run_id = str(flow_run.id)
    create_markdown_artifact(
        review_markdown(ctx.release, ctx.reports_dir, outcome, run_id, days),
        key=artifact_key(ctx.release, "review"),
        description="what the steward approves: risk and validation summary",
    )
    logger.info(
        "release %s waits for a steward: approve in the UI (Resume) or run "
        "`slidegate approve %s`; rejected automatically after %g day(s)",
        ctx.release,
        run_id,
        days,
    )
    form = ApprovalInput.with_initial_data(
        description=f"Approve release `{ctx.release}`? See the `review` artifact. Put your "
        "name in `approver`: it is recorded (privately) with the decision.",
        approve=False,
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=max(1, round(days * 86400)),
            poll_interval=POLL_SECONDS,
            key="steward-approval",
        )
        decision = ApprovalDecision(
            approved=bool(answer.approve),
            reason=answer.reason.strip() or ("approved" if answer.approve else "no reason given"),
            by=approver_of(answer.approver, answer.via),
            at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
    except FlowPauseTimeout:
        decision = ApprovalDecision(
            approved=False,
            reason=f"no answer within {days:g} day(s) of {now}: rejected by the timeout policy",
            by="timeout",
            at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
    record_decision(Path(ctx.work) / "approval.json", ctx.release, run_id, decision)
    logger.info(
        "release %s %s by %s",
        ctx.release,
        "approved" if decision.approved else "rejected",
        decision.by,
    )
    return decision


def approver_of(name: str, via: str) -> str:
    """The approver as recorded (private: work area and registry, never published)."""
    name = " ".join(name.split())[:100] or "unnamed"
    return f"{name} ({'cli' if via == 'cli' else 'ui'})"


def record_decision(path: Path, release: str, run_id: str, decision: ApprovalDecision) -> None:
    """Private record (the reason is free text from a person: it is never published)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"release": release, "flow_run": run_id, **asdict(decision)}
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")


def review_markdown(release: str, reports_dir: Path, outcome: Any, run_id: str, days: float) -> str:
    counts = {
        st: sum(s.status == st for s in outcome.slides)
        for st in ("approved", "withheld", "quarantined")
    }
    lines = [
        f"# Steward review: release `{release}`",
        "",
        f"- slides: {counts['approved']} approved by the gates, {counts['withheld']} withheld, "
        f"{counts['quarantined']} quarantined",
        f"- validation: {'passed' if outcome.validation_passed else '**FAILED**'}"
        f" ({len(outcome.blocking_failures)} blocking, {len(outcome.warnings)} warning(s))",
        f"- risk: {'passed' if outcome.risk_passed else '**cohort withheld**'}",
        "",
        "Approve with the **Resume** button of this flow run (tick `approve`), or run",
        f"`slidegate approve {run_id}`; reject with",
        f"`slidegate reject {run_id} --reason '...'`. No answer within {days:g} day(s) rejects it.",
    ]
    for w in outcome.warnings:
        lines.append(f"- validation warning: {w}")
    lines += review_lines(outcome.slides)  # burned-in findings: where, never what
    risk_md = Path(reports_dir) / "risk.md"
    if risk_md.is_file():
        lines += ["", risk_md.read_text(encoding="utf-8").replace("# ", "## ", 1)]
    return "\n".join(lines) + "\n"


# --- answering, from the command line (any process that can reach the Prefect API) ---------


def find_paused_run(ref: str) -> UUID:
    """A paused flow run by id, or by name (e.g. `release-crc-2026-q4`)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(ref))
        except ValueError:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[ref]))
            )
            paused = [r for r in runs if r.state is not None and r.state.is_paused()]
            if not paused:
                raise SlidegateError(
                    f"no paused flow run named {ref!r}; give the run id shown in the UI or log"
                ) from None
            run = paused[0]
        except Exception as exc:
            raise SlidegateError(
                f"flow run {ref} not found on the Prefect server ({type(exc).__name__}); "
                "check the id and PREFECT_API_URL"
            ) from None
        if run.state is None or not run.state.is_paused():
            state = run.state.name if run.state else "unknown"
            raise SlidegateError(
                f"flow run {ref} is not waiting for approval (state: {state}); nothing to answer"
            )
        return run.id


def answer(ref: str, approve: bool, reason: str = "", approver: str = "") -> UUID:
    """Resume a paused release with the steward's answer (the same input as the UI form)."""
    from prefect.flow_runs import resume_flow_run

    run_id = find_paused_run(ref)
    run_input = {"approve": approve, "reason": reason, "approver": approver, "via": "cli"}
    try:
        resume_flow_run(run_id, run_input=run_input)
    except Exception as exc:  # NotPausedError, FlowPauseTimeout, HTTP errors
        raise SlidegateError(
            f"could not answer flow run {run_id}: {type(exc).__name__}: {exc}"
        ) from None
    return run_id


def answer_at(api_url: str, ref: str, approve: bool, reason: str = "", approver: str = "") -> UUID:
    """`answer` against the Prefect API at `api_url` (checked first: a clear error if down)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.server import healthy

    if not healthy(api_url.rstrip("/")):
        raise SlidegateError(
            f"no Prefect server at {api_url}; set PREFECT_API_URL or --prefect-port"
        )
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return answer(ref, approve, reason, approver)
