"""Prefect artifacts a steward reads at a glance, and run tags. PHI-free by construction.

Inventory (per slide: format, levels, size, counts), de-identification summary by class (what
was removed: counts per field class and image kind, never a value), validation summary (counts
per suite, link to the Data Docs when built), Dask dashboard link. Reads only the private work
area's plans and the publishable reports.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_table_artifact

from flows.progress import artifact_key
from slidegate.models import DeidPlan, SlideReport


def inventory_rows(reports: Sequence[SlideReport]) -> list[dict[str, object]]:
    return [
        {
            "slide": r.pseudonym,
            "status": r.status,
            "format": r.format or "",
            "levels": r.levels,
            "size_mb": round(r.size / 1e6, 1),
            **{k: v for k, v in sorted(r.detail.items())},
        }
        for r in sorted(reports, key=lambda r: r.pseudonym)
    ]


def deid_rows(plans: Sequence[DeidPlan]) -> list[dict[str, object]]:
    """Per field class: removed / coarsened / kept counts; per associated image kind: removed."""
    by_class: dict[str, Counter[str]] = {}
    for plan in plans:
        for f in plan.fields:
            by_class.setdefault(f.field_class, Counter())[f.action] += 1
        for img in plan.dropped_images:
            by_class.setdefault(f"image: {img.kind}", Counter())["drop"] += 1
    return [
        {
            "class": name,
            "removed": c["drop"],
            "coarsened": c["coarsen"],
            "kept": c["keep"],
        }
        for name, c in sorted(by_class.items())
    ]


def validation_rows(validation: dict[str, Any]) -> list[dict[str, object]]:
    rows = []
    for table, res in sorted(validation.items()):
        if not isinstance(res, dict):
            continue
        stats = res.get("statistics") or {}
        rows.append(
            {
                "table": table,
                "passed": bool(res.get("success")),
                "expectations": stats.get("evaluated_expectations", ""),
                "successful": stats.get("successful_expectations", ""),
                "failed": stats.get("unsuccessful_expectations", ""),
            }
        )
    return rows


def stage_artifacts(
    release: str, work: Path, reports_dir: Path, reports: Sequence[SlideReport]
) -> None:
    """Inventory, de-identification and validation artifacts of one release run."""
    create_table_artifact(
        inventory_rows(reports),
        key=artifact_key(release, "inventory"),
        description="inventory: per slide format, levels, size and counts (pseudonyms only)",
    )
    # carried back in the reports: the workers' disks need not be shared with the flow
    plans = sorted((r.plan for r in reports if r.plan is not None), key=lambda p: p.pseudonym)
    create_table_artifact(
        deid_rows(plans),
        key=artifact_key(release, "deid"),
        description=f"de-identification of {len(plans)} slide(s): what was removed, by class "
        "(counts only, never values)",
    )
    path = reports_dir / "validation.json"
    if path.is_file():
        create_table_artifact(
            validation_rows(json.loads(path.read_text(encoding="utf-8"))),
            key=artifact_key(release, "validation"),
            description="Great Expectations suites on the released tables",
        )
    docs = sorted(work.rglob("data_docs/**/index.html")) or sorted(work.rglob("index.html"))
    if docs:
        create_link_artifact(
            docs[0].resolve().as_uri(),
            link_text="validation Data Docs (local file)",
            key=artifact_key(release, "data-docs"),
        )


def dashboard_artifact(release: str) -> str | None:
    """Link the Dask dashboard of the running flow's cluster (None when there is none)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner: Any = getattr(ctx, "task_runner", None) if ctx else None
    try:  # prefect-dask creates the cluster and client on first use of `.client`
        client = (
            runner.client if isinstance(getattr(type(runner), "client", None), property) else None
        )
    except Exception:  # no cluster: the flow reports its own error when it submits work
        return None
    link = getattr(client, "dashboard_link", None) if client is not None else None
    if not link:
        return None
    from prefect import get_run_logger

    get_run_logger().info("Dask dashboard: %s", link)
    create_link_artifact(
        link,
        link_text="Dask dashboard (live while the run works)",
        key=artifact_key(release, "dask"),
        description="Dask dashboard of this run's cluster (live while it runs)",
    )
    return str(link)


def tag_current_run(*labels: str) -> None:
    """Add tags to the running flow run (a run's tags are otherwise fixed at creation)."""
    from prefect import get_client
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        client.update_flow_run(run.id, tags=sorted(set(run.tags) | set(labels)))


def published_note(
    target: str | None, release: str, manifest: dict[str, object], dashboard: str | None
) -> str:
    """Where the release is and how to check it, for the end of the release summary."""
    objects = manifest.get("objects")
    lines = [
        "",
        "## Where",
        "",
        f"- release: `{target}/{release}` (manifest.json written last)",
        f"- objects: {len(objects) if isinstance(objects, list) else '?'}, every one in "
        "`SHA256SUMS` (`sha256sum -c SHA256SUMS` in the release folder, or "
        f"`slidegate verify {target}/{release}`)",
    ]
    if isinstance(manifest.get("sha256sums"), str):
        lines.append(f"- sha256 of SHA256SUMS: `{manifest['sha256sums']}`")
    if dashboard:
        lines.append(f"- Dask dashboard of this run: [{dashboard}]({dashboard})")
    return "\n".join(lines) + "\n"
