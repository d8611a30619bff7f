"""Run the policy's GX suites on the released cohort table and the output metadata table.

The results are published under reports/, so they are stripped to counts: no unexpected values,
no value lists, no row indexes, no exception text (any of them could hold PHI). The failure
messages name the failing rows by their 1-based number in the table (a position, not a value)
so a steward can fix them.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from slidegate.validate.policy import MetadataPolicy
from slidegate.validate.suites import (
    Check,
    build_suite,
    cohort_checks,
    metadata_checks,
    source_checks,
)

#: result fields that are counts or percentages, never values
_SAFE_RESULT_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "missing_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)


#: Data Docs carry the run's name and time (in page names and text): a fixed time and the
#: release id make two identical releases byte-identical (the manifest has the real time)
DOCS_RUN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
#: times GX writes besides the run time: the render time (a `?d=` on its logo URL) and the
#: batch's `ge_load_time`; both become the fixed run time
_GX_TIME = re.compile(rb"\d{8}T\d{6}\.\d{6}Z")
#: collapsible blocks get a random uuid4 id (`...-collapse-body-<uuid>`): numbered instead
_COLLAPSE_ID = re.compile(
    rb"-collapse-body-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


@dataclass(frozen=True)
class ValidationOutcome:
    passed: bool
    #: "<table>: <expectation type> on column '<c>': <rule> (<n> of <m> rows: rows 2, 5)";
    #: 1-based data row numbers, no values
    blocking_failures: tuple[str, ...]
    warnings: tuple[str, ...]
    #: GX validation results per table, JSON-safe, values removed
    results: dict[str, Any] = field(hash=False)


def _empty_to_null(df: pd.DataFrame) -> pd.DataFrame:
    """Empty cells count as missing for `not_null` (cohorts are read with keep_default_na=False)."""
    out = df.astype(object)
    return out.mask(out.map(lambda v: isinstance(v, str) and v.strip() == ""), None)


def _sanitize(result: dict[str, Any]) -> dict[str, Any]:
    cfg = result.get("expectation_config") or {}
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
    raw = result.get("result") or {}
    exc = result.get("exception_info") or {}
    return {
        "success": bool(result.get("success")),
        "expectation_config": {
            "type": cfg.get("type"),
            "kwargs": kwargs,  # from the policy, not from the data
            "meta": cfg.get("meta", {}),
        },
        "result": {k: raw[k] for k in _SAFE_RESULT_KEYS if k in raw},
        "raised_exception": bool(exc.get("raised_exception", False)),
    }


def _column_diff(expected: list[str], observed: list[str]) -> str:
    extra = [c[:40] for c in observed if c not in expected]
    missing = [c for c in expected if c not in observed]
    return f"unexpected column(s) {extra}, missing column(s) {missing}"


def _describe(table: str, res: dict[str, Any], df: pd.DataFrame) -> str:
    cfg, out = res["expectation_config"], res["result"]
    meta = cfg["meta"]
    where = f" on column '{meta['column']}'" if meta.get("column") else ""
    text = f"{table}: {cfg['type']}{where}: {meta['rule']}"
    if cfg["type"] == "expect_table_columns_to_match_set":
        return (
            text + f" ({_column_diff(cfg['kwargs']['column_set'], [str(c) for c in df.columns])})"
        )
    if res["raised_exception"] or not out:
        return text + " (the check could not run: is the column there?)"
    if "unexpected_count" in out:
        counts = f"{out['unexpected_count']} of {out.get('element_count', len(df))} rows"
        rows = failing_rows(cfg["type"], cfg["kwargs"], df)
        return text + f" ({counts}{_rows_text(rows)})"
    return text


#: at most this many row numbers are listed in a message
MAX_ROWS_LISTED = 20


def _rows_text(rows: list[int]) -> str:
    if not rows:
        return ""
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_LISTED])
    more = f" and {len(rows) - MAX_ROWS_LISTED} more" if len(rows) > MAX_ROWS_LISTED else ""
    return f": row{'s' if len(rows) > 1 else ''} {shown}{more}"


def failing_rows(kind: str, kwargs: dict[str, Any], df: pd.DataFrame) -> list[int]:
    """1-based data row numbers (the header not counted) whose value fails a column check,
    recomputed here because GX's result must not carry them (it is published). Row numbers
    name no value; the steward finds the row in the table they supplied."""
    column = kwargs.get("column")
    if column is None or column not in df.columns:
        return []
    values = _empty_to_null(df[[column]])[column]
    present = values.notna()
    text = values.where(present, "").astype(str)
    if kind == "expect_column_values_to_not_be_null":
        bad = ~present
    elif kind == "expect_column_values_to_match_regex":
        bad = present & ~text.map(lambda v: re.search(kwargs["regex"], v) is not None)
    elif kind == "expect_column_values_to_not_match_regex":
        bad = present & text.map(lambda v: re.search(kwargs["regex"], v) is not None)
    elif kind == "expect_column_values_to_not_match_regex_list":
        pats = [re.compile(r) for r in kwargs["regex_list"]]
        bad = present & text.map(lambda v: any(p.search(v) for p in pats))
    elif kind == "expect_column_values_to_be_in_set":
        allowed = set(kwargs["value_set"])
        bad = present & ~values.isin(allowed)
    else:
        return []
    return [i + 1 for i, b in enumerate(bad.tolist()) if b]


def _run_suite(
    context: Any, table: str, df: pd.DataFrame, checks: list[Check], docs: str | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """`docs`: the run name of the Data Docs (None: no docs)."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    source = context.data_sources.add_pandas(f"{table}-source")
    batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(build_suite(f"{table}-suite", checks))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{table}-validation", data=batch, suite=suite)
    )
    with warnings.catch_warnings():  # pandas warns about capture groups in policy regexes
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
        run = definition.run(
            batch_parameters={"dataframe": _empty_to_null(df)}, result_format="SUMMARY"
        )
    raw = run.to_json_dict()
    if docs is not None:  # Data Docs from a BOOLEAN_ONLY run: the HTML holds no value
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{table}-docs",
                validation_definitions=[definition],
                result_format="BOOLEAN_ONLY",
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
            )
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular")
            checkpoint.run(
                batch_parameters={"dataframe": _empty_to_null(df)},
                run_id=RunIdentifier(run_name=docs, run_time=DOCS_RUN_TIME),
            )
    results = [_sanitize(r) for r in raw.get("results", [])]
    blocking: list[str] = []
    warned: list[str] = []
    for res in results:
        if res["success"] and not res["raised_exception"]:
            continue
        text = _describe(table, res, df)
        severity = res["expectation_config"]["meta"].get("slidegate_severity", "block")
        (warned if severity == "warn" else blocking).append(text)
    clean = {
        "suite_name": raw.get("suite_name"),
        "success": not blocking,
        "statistics": raw.get("statistics", {}),
        "great_expectations_version": (raw.get("meta") or {}).get("great_expectations_version"),
        "results": results,
    }
    return clean, blocking, warned


def _drop_volatile(docs_dir: Path) -> None:
    """Make GX's pages a function of their inputs: fixed times, numbered element ids."""
    run_time = DOCS_RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ").encode()
    for page in sorted(docs_dir.rglob("*.html")):
        data = page.read_bytes()
        fixed = _number_ids(_GX_TIME.sub(run_time, data))
        if fixed != data:
            page.write_bytes(fixed)


def _number_ids(data: bytes) -> bytes:
    """Each distinct random collapse id becomes 1, 2, ... in order of appearance."""
    ids: dict[bytes, bytes] = {}

    def number(m: re.Match[bytes]) -> bytes:
        return b"-collapse-body-" + ids.setdefault(m.group(1), b"%d" % (len(ids) + 1))

    return _COLLAPSE_ID.sub(number, data)


def _context(docs_dir: Path | None = None) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites["slidegate"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        data_docs_sites=sites,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def validate_tables(
    cohort: pd.DataFrame,
    metadata: pd.DataFrame,
    policy: MetadataPolicy,
    *,
    source_columns: list[str] | None = None,
    docs_dir: Path | None = None,
    run_name: str = "slidegate",
) -> ValidationOutcome:
    """Validate the released cohort table and the output metadata table (slide, key, value);
    with `source_columns`, also the source table's column names (never its values). With
    `docs_dir`, GX Data Docs (HTML, without values) are written there, named by `run_name`
    (the release id) and byte-identical for identical inputs."""
    context = _context(docs_dir)
    results: dict[str, Any] = {}
    blocking: list[str] = []
    warned: list[str] = []
    suites = [
        ("cohort", cohort, cohort_checks(policy)),
        ("metadata", metadata, metadata_checks(policy)),
    ]
    if source_columns is not None and source_checks(policy, source_columns):
        header = pd.DataFrame(columns=[str(c) for c in source_columns])  # names only, no rows
        suites.insert(0, ("source", header, source_checks(policy, source_columns)))
    for table, df, checks in suites:
        docs = run_name if docs_dir is not None else None
        results[table], b, w = _run_suite(context, table, df, checks, docs=docs)
        blocking += b
        warned += w
    if docs_dir is not None:
        _drop_volatile(docs_dir)
    return ValidationOutcome(
        passed=not blocking,
        blocking_failures=tuple(blocking),
        warnings=tuple(warned),
        results=results,
    )
