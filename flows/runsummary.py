"""The end-of-run summary of `slidegate release` / `demo`: one line per outcome for a person,
or one JSON document (`--json`) for a script.

Reasons are structured codes (`audit.identifying-value-found-in-output`, `risk.max_risk`,
`egress.canary`, `inventory.corrupt`), derived from the slide reasons the release publishes in
`reports/slides.json` (publishable by construction: category and rule, no path, no value), with
every parenthesised detail and every number left out. Never source text.

JSON schema (`schema: "slidegate.run-summary/1"`), every key always present:

    schema     "slidegate.run-summary/1"
    command    "release" | "demo"
    release    release id, or null when the spec could not be read
    outcome    "published" | "complete" | "dry-run" | "rejected" | "withheld" | "error"
               | "interrupted"
    exit_code  the process exit code (flows/exitcodes.py)
    target     "<target>/<release>" when published or complete, else null
    counts     {"approved": int, "withheld": int, "quarantined": int}
    reasons    {"withheld": [{"code": str, "count": int}], "quarantined": [...]}, most
               frequent first, at most 5 each
    error      null, or {"category": str, "reason": str}: the error's category and its
               publishable reason (the full message is on stderr)
    work       the private work area of the release, or null
    ui         the Prefect UI address, or null
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SCHEMA = "slidegate.run-summary/1"
TOP = 5
_RULE = re.compile(r"\[([a-z0-9_.:-]{1,60})\]")
_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_EGRESS = re.compile(r"\begress\.[a-z-]{1,40}\b")


_PSEUDONYM = re.compile(r"\b[spbx]-[0-9a-f]{16}\b")
#: a reason's code is its first words, up to the first of these (what follows names a
#: release, a pseudonym, a number: details, not the kind of reason)
_STOP = frozenset({"in", "as", "of", "for", "at", "from", "on", "to", "with", "by", "under"})


def _slug(text: str) -> str:
    text = _PSEUDONYM.sub(" ", _PARENS.sub(" ", text.lower()))
    words = re.findall(r"[a-z]+(?:-[a-z]+)*", re.sub(r"[0-9][0-9.,]*", " ", text))
    words = words[1:] if words[:1] == ["the"] else words
    kept: list[str] = []
    for word in words[:5]:
        if word in _STOP and len(kept) >= 2:
            break
        kept.append(word)
    return "-".join(kept)[:48].strip("-")


def reason_code(stage: str | None, reason: str | None) -> str:
    """A short structured code for a slide's published reason."""
    text = (reason or "").strip()
    egress = _EGRESS.findall(text)
    if egress:
        return egress[0]
    rule = _RULE.search(text)
    if rule:
        return rule.group(1)
    head, sep, rest = text.partition(":")
    if sep and _slug(head) and " " not in head.strip():
        return f"{_slug(head)}.{_slug(rest) or 'unspecified'}"
    return f"{_slug(stage or '') or 'slide'}.{_slug(text) or 'unspecified'}"


def top_reasons(slides: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for status in ("withheld", "quarantined"):
        held = [s for s in slides if s.get("status") == status]
        codes = Counter(reason_code(s.get("stage"), s.get("reason")) for s in held)
        ranked = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        out[status] = [{"code": c, "count": n} for c, n in ranked]
    return out


def published_slides(work: Path | None) -> list[dict[str, Any]]:
    """reports/slides.json of the release's work area (what the release publishes of each
    slide), or [] when the run stopped before the cohort was decided."""
    if work is None:
        return []
    path = work / "reports" / "slides.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []


def summary(
    *,
    command: str,
    release: str | None,
    outcome: str,
    exit_code: int,
    work: Path | None,
    counts: Mapping[str, int] | None = None,
    target: str | None = None,
    error: BaseException | None = None,
    ui: str | None = None,
) -> dict[str, Any]:
    slides = published_slides(work)
    if counts is None:
        counts = {st: sum(s.get("status") == st for s in slides)
                  for st in ("approved", "withheld", "quarantined")}  # fmt: skip
    err = None
    if error is not None:
        reason = getattr(error, "reason", None) or type(error).__name__
        err = {"category": getattr(error, "category", "internal"), "reason": str(reason)}
    return {
        "schema": SCHEMA,
        "command": command,
        "release": release,
        "outcome": outcome,
        "exit_code": exit_code,
        "target": target,
        "counts": {k: int(counts.get(k, 0)) for k in ("approved", "withheld", "quarantined")},
        "reasons": top_reasons(slides),
        "error": err,
        "work": str(work) if work is not None else None,
        "ui": ui,
    }


def human_lines(doc: Mapping[str, Any]) -> list[str]:
    """The summary for a person: counts, then the top reasons per status."""
    c = doc["counts"]
    lines = [
        f"release {doc['release']}: {c['approved']} approved, {c['withheld']} withheld, "
        f"{c['quarantined']} quarantined"
    ]
    for status in ("withheld", "quarantined"):
        top = doc["reasons"][status]
        if top:
            lines.append(f"  {status}: " + ", ".join(f"{r['code']} ({r['count']})" for r in top))
    return lines
