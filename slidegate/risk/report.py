"""risk.md and risk.png from a CohortRisk (PHI-free: pseudonyms, generalised values, figures).

The plot is drawn with Pillow (already a dependency): left, the distribution of R per patient
before and after mitigation with the threshold; right, V_pi against its chance level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from slidegate.risk.result import CohortRisk


def _f(v: Any) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def risk_markdown(
    risk: CohortRisk,
    taxonomy: Sequence[Mapping[str, Any]] = (),
    ledger: Sequence[Mapping[str, Any]] = (),
    title: str = "Re-identification risk",
) -> str:
    i = risk.inputs
    pop = "yes (journalist risk)" if i["population_table"] else "no (prosecutor risk)"
    lines = [
        f"# {title}",
        "",
        f"**{'Passed' if risk.passed else 'Cohort withheld'}**: {risk.reason}",
        "",
        "## Inputs",
        "",
        f"- R(h) = P(attack) x (1 - (1 - r_qi) x (1 - P(ref) x r_img)); "
        f"P(attack) {i['p_attack']}, P(ref) {i['p_ref']}",
        f"- Thresholds: max R {i['max_risk']}, mean R {i['max_mean_risk']}; suppression up to "
        f"{i['max_suppression']:.0%} of patients; cap down to {i['min_slides_per_patient']} "
        "slide(s) per patient",
        f"- Quasi-identifiers: {', '.join(risk.quasi_identifiers)}; sensitive attribute: "
        f"{i['sensitive']}; population table: {pop}",
        f"- Generalisation limits: {i['max_levels'] or 'none'}; chosen levels: {risk.levels}",
        f"- Information loss: {risk.information_loss:.3f} ({risk.loss_metric})",
        f"- Cohort: {i['patients']} patients, {i['slides']} slides, "
        f"{i['slides_with_features']} with image features",
        "",
        "## Mitigation steps",
        "",
        "| step | what | patients | slides | max R | mean R | passes |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {s.action} | {s.detail} | {s.n_patients} | {s.n_slides} | {s.max_risk:.3f} "
        f"| {s.mean_risk:.3f} | {'yes' if s.passed else 'no'} |"
        for s in risk.steps
    ]
    lines += ["", "## Quasi-identifier figures", "", "| | before | after |", "|---|---:|---:|"]
    for key in (
        "n_patients",
        "k",
        "n_classes",
        "prosecutor_max",
        "prosecutor_mean",
        "marketer",
        "journalist_max",
        "l_diversity",
    ):
        lines.append(f"| {key} | {_f(risk.qi_before.get(key))} | {_f(risk.qi_after.get(key))} |")
    lines += ["", "## Image linkage (pi_max attack on the lowest pyramid level)", ""]
    for label, link in (
        ("before mitigation", risk.linkage_before),
        ("released", risk.linkage_after),
    ):
        if link:
            lines.append(
                f"- {label}: V_pi {link['v_pi']:.3f} +/- {link['v_pi_std']:.3f} over "
                f"{int(link['draws'])} reference draws, {int(link['patients'])} patients; "
                f"chance level {link['chance']:.3f}"
            )
        else:
            lines.append(f"- {label}: not run (no slide images or fewer than one patient)")
    lines += [
        "",
        "## Patients",
        "",
        "| patient | slides | EC | r_qi | r_img prior | r_img empirical | r_img from | R before "
        "| R | decision | rule | reason |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|---|",
    ]
    lines += [
        f"| {p.patient} | {p.slides} | {p.ec_size} | {p.r_qi:.2f} | {p.r_img_prior:.2f} "
        f"| {p.r_img_empirical:.2f} | {p.r_img_estimate} | {p.risk_before:.2f} "
        f"| {p.risk:.2f} | {p.decision} | {p.rule or '-'} | {p.reason} |"
        for p in risk.patients
    ]
    if risk.withheld_slides:
        lines += ["", "## Slides withheld by the cap", ""]
        lines += [f"- {s}: {r}" for s, r in sorted(risk.withheld_slides.items())]
    if taxonomy:
        lines += [
            "",
            "## Taxonomy inventory (identifying parts per slide)",
            "",
            "| slide | images dropped | metadata classes (dropped/coarsened/kept) | left |",
            "|---|---|---|---|",
        ]
        for t in taxonomy:
            meta = "; ".join(
                f"{c} {v['dropped']}/{v['coarsened']}/{v['kept']}"
                for c, v in sorted(t["metadata"].items())
            )
            images = ", ".join(f"{k} {v}" for k, v in t["images"].items()) or "none found"
            lines.append(f"| {t['slide']} | {images} | {meta} | {'; '.join(t['left']) or 'none'} |")
    if ledger:
        lines += ["", "## Cross-release ledger", ""]
        lines += [f"- {f['slide']}: {f['severity']}: {f['reason']}" for f in ledger]
    return "\n".join(lines) + "\n"


def risk_plot_png(risk: CohortRisk, path: Path) -> Path:
    """Histogram of R before/after with the threshold; V_pi bars against chance."""
    w, h = 900, 380
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 8), "R per patient: before (grey) / after mitigation (blue)", fill="black")
    x0, y0, pw, ph = 40, 40, 480, 290
    d.rectangle((x0, y0, x0 + pw, y0 + ph), outline="black")
    bins = 10
    before = [p.risk_before for p in risk.patients]
    after = [p.risk for p in risk.patients if p.decision == "approved"]
    counts_b = [sum(min(int(r * bins), bins - 1) == b for r in before) for b in range(bins)]
    counts_a = [sum(min(int(r * bins), bins - 1) == b for r in after) for b in range(bins)]
    top = max([1, *counts_b, *counts_a])
    bw = pw / bins
    for b in range(bins):
        for k, (counts, colour) in enumerate(((counts_b, "#aaaaaa"), (counts_a, "#3465a4"))):
            bh = ph * counts[b] / top
            left = x0 + b * bw + 3 + k * (bw - 6) / 2
            d.rectangle((left, y0 + ph - bh, left + (bw - 6) / 2, y0 + ph), fill=colour)
        d.text((x0 + b * bw + 2, y0 + ph + 4), f"{b / bins:.1f}", fill="black")
    tx = x0 + pw * float(risk.inputs["max_risk"])
    d.line((tx, y0, tx, y0 + ph), fill="red", width=2)
    d.text((tx + 4, y0 + 4), f"max R {risk.inputs['max_risk']}", fill="red")
    d.text((x0 - 30, y0), str(top), fill="black")
    # V_pi against chance
    vx, vw = 600, 260
    d.text((vx, 8), "V_pi (bars) vs chance (red line)", fill="black")
    d.rectangle((vx, y0, vx + vw, y0 + ph), outline="black")
    for k, (label, link) in enumerate(
        (("before", risk.linkage_before), ("released", risk.linkage_after))
    ):
        left = vx + 30 + k * 120
        d.text((left, y0 + ph + 4), label, fill="black")
        if not link:
            d.text((left, y0 + ph - 20), "n/a", fill="black")
            continue
        top_y = y0 + ph * (1 - link["v_pi"])
        d.rectangle((left, top_y, left + 80, y0 + ph), fill="#3465a4")
        sd = ph * link["v_pi_std"]
        d.line((left + 40, top_y - sd, left + 40, top_y + sd), fill="black", width=2)
        cy = y0 + ph * (1 - link["chance"])
        d.line((left - 5, cy, left + 85, cy), fill="red", width=2)
        d.text((left, top_y - 14), f"{link['v_pi']:.2f}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
