"""Pure planning of a synthetic cohort: who the patients are and which slide belongs to whom.

Risk structure (the risk tests rely on it):
- Patients are numbered 1..P. The last patient is *rare*, and so is every 5th patient
  (5, 10, ...). With P == 2 there is no rare patient (a rare one would leave its partner alone).
- The other ("common") patients are split, in order, into groups of 2 (the last group takes 3
  when their number is odd). A group shares sex, diagnosis (common ICD-10 code), site and a
  10-year age band; ages differ inside the band. So on (sex, diagnosis, site, age // 10) every
  common patient is in an equivalence class of >= 2.
- A rare patient has a rare diagnosis (C49.4, D48.1, ...) that no common group uses, in a
  combination no other patient has: a k=2 policy withholds exactly the rare patients.
Slides are dealt round-robin to patients (slides >= patients is required), so with
slides >= 2 * patients every patient has >= 2 slides. A patient with m slides has 1 block when
m == 1, 2 blocks when 2 <= m <= 5, else 3; one specimen per block, with its own collection date.
Every `tiff_every`-th slide is a generic TIFF, the rest SVS (at least one of each when
slides >= 2). Corrupt extra slides (SVS) follow the normal ones and go to common patients
(patient 1 when there is none), on the patient's first block.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from slidegate.synth.canary import offset, token

COMMON = (
    ("C18.7", "colon", "F"),
    ("C20", "rectum", "M"),
    ("C50.9", "breast", "F"),
    ("C34.1", "lung", "M"),
    ("C16.9", "stomach", "F"),
    ("C61", "prostate", "M"),
    ("C25.0", "pancreas", "F"),
    ("C22.0", "liver", "M"),
)
RARE = (
    ("C49.4", "soft tissue", "F"),
    ("D48.1", "connective tissue", "M"),
    ("C17.0", "duodenum", "F"),
    ("C74.0", "adrenal gland", "M"),
    ("C69.6", "orbit", "F"),
    ("C37", "thymus", "M"),
    ("C40.2", "bone", "F"),
    ("C62.9", "testis", "M"),
)


@dataclass(frozen=True)
class Patient:
    number: int  # 1-based
    id: str  # canary
    name: str  # canary, printed on the labels
    sex: str
    age: int
    diagnosis: str
    site: str
    rare: bool


@dataclass(frozen=True)
class Block:
    number: int  # 1-based, cohort-wide
    patient: int
    id: str  # canary
    specimen: str  # canary
    collected: dt.date


@dataclass(frozen=True)
class SlidePlan:
    number: int  # 1-based; file S{number:04d}
    kind: Literal["svs", "tiff"]
    patient: int
    block: int
    corrupt: bool

    @property
    def filename(self) -> str:
        return f"S{self.number:04d}.{self.kind}"


@dataclass(frozen=True)
class CohortPlan:
    seed: int
    patients: tuple[Patient, ...]
    blocks: tuple[Block, ...]
    slides: tuple[SlidePlan, ...]


def _is_rare(j: int, n: int) -> bool:
    return n != 2 and (j == n or j % 5 == 0)


def _groups(common: list[int]) -> list[list[int]]:
    groups = [common[i : i + 2] for i in range(0, len(common) - len(common) % 2, 2)]
    if len(common) % 2:
        if groups:
            groups[-1].append(common[-1])
        else:
            groups.append([common[-1]])
    return groups


def plan_patients(seed: int, n: int) -> list[Patient]:
    common = [j for j in range(1, n + 1) if not _is_rare(j, n)]
    out: dict[int, Patient] = {}
    for g, members in enumerate(_groups(common)):
        diagnosis, site, sex = COMMON[g % len(COMMON)]
        band = 40 + 10 * ((g + offset(seed, "band", span=5)) % 5)
        start = offset(seed, "age", g, span=10 - len(members) + 1)
        for k, j in enumerate(members):
            out[j] = _patient(seed, j, sex, band + start + k, diagnosis, site, rare=False)
    rares = [j for j in range(1, n + 1) if _is_rare(j, n)]
    for r, j in enumerate(rares):
        diagnosis, site, sex = RARE[r % len(RARE)]
        if (r // (len(RARE) * 5)) % 2:
            sex = "M" if sex == "F" else "F"
        band = 20 + 10 * ((r // len(RARE)) % 5)
        age = band + offset(seed, "rare-age", r, span=10)
        out[j] = _patient(seed, j, sex, age, diagnosis, site, rare=True)
    return [out[j] for j in range(1, n + 1)]


def _patient(seed: int, j: int, sex: str, age: int, dx: str, site: str, *, rare: bool) -> Patient:
    return Patient(
        j, token(seed, "P", j, "PTID"), token(seed, "P", j, "NAME"), sex, age, dx, site, rare
    )


def _n_blocks(m: int) -> int:
    return 1 if m <= 1 else (2 if m <= 5 else 3)


def _is_tiff(i: int, slides: int, tiff_every: int) -> bool:
    if slides >= 2 and i == slides and not any(k % tiff_every == 0 for k in range(1, slides + 1)):
        return True  # at least one TIFF
    if slides >= 2 and i == 1 and tiff_every == 1:
        return False  # at least one SVS
    return i % tiff_every == 0


def plan_cohort(seed: int, slides: int, patients: int, tiff_every: int, corrupt: int) -> CohortPlan:
    if patients < 1 or slides < patients or tiff_every < 1 or corrupt < 0 or seed < 0:
        msg = "need patients >= 1, slides >= patients, tiff_every >= 1, corrupt >= 0, seed >= 0"
        raise ValueError(msg)
    pats = plan_patients(seed, patients)
    per_patient = [
        [i for i in range(1, slides + 1) if (i - 1) % patients == j - 1]
        for j in range(1, patients + 1)
    ]
    base = dt.date(2014, 1, 1) + dt.timedelta(days=offset(seed, "base-date", span=2500))
    blocks: list[Block] = []
    block_of: dict[int, int] = {}
    first_block: dict[int, int] = {}
    for p, numbers in zip(pats, per_patient, strict=True):
        nb = _n_blocks(len(numbers))
        mine = []
        for _ in range(nb):
            b = len(blocks) + 1
            collected = base + dt.timedelta(days=11 * b + offset(seed, "coll", b, span=10))
            blocks.append(
                Block(
                    b, p.number, token(seed, "B", b, "BLCK"), token(seed, "X", b, "SPEC"), collected
                )
            )
            mine.append(b)
        first_block[p.number] = mine[0]
        for k, i in enumerate(numbers):
            block_of[i] = mine[k % nb]
    plans = [
        SlidePlan(
            i,
            "tiff" if _is_tiff(i, slides, tiff_every) else "svs",
            blocks[block_of[i] - 1].patient,
            block_of[i],
            corrupt=False,
        )
        for i in range(1, slides + 1)
    ]
    commons = [p.number for p in pats if not p.rare] or [1]
    for c in range(corrupt):
        owner = commons[c % len(commons)]
        plans.append(SlidePlan(slides + c + 1, "svs", owner, first_block[owner], corrupt=True))
    return CohortPlan(seed, tuple(pats), tuple(blocks), tuple(plans))
