"""Which published columns the risk model scores: every one that is not a keyed pseudonym.

The quasi-identifier (QI) set is not a list somebody keeps in step with the metadata policy: it
is every column the metadata policy releases (kept or generalised; `collection_year` included)
except the keyed pseudonyms (slide, patient, block, specimen: a fresh key per release, so they
link to nothing outside it) and the columns the metadata policy declares `non_identifying` with
a written reason. The risk policy only says how QIs may be generalised further and which one is
the sensitive attribute; it may not name a column that is not a QI.
"""

from __future__ import annotations

from dataclasses import dataclass

from slidegate.errors import PolicyError
from slidegate.risk.policy import RiskPolicy
from slidegate.validate.policy import MetadataPolicy


@dataclass(frozen=True)
class ColumnRoles:
    quasi_identifiers: tuple[str, ...]
    pseudonyms: tuple[str, ...]
    #: released column -> the metadata policy's reason it is not scored
    non_identifying: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "pseudonyms": list(self.pseudonyms),
            "non_identifying": dict(self.non_identifying),
        }


def column_roles(metadata: MetadataPolicy, risk: RiskPolicy) -> ColumnRoles:
    """The roles of the released columns; PolicyError when the risk policy does not fit."""
    qis: list[str] = []
    pseudonyms: list[str] = []
    exempt: dict[str, str] = {}
    for _src, name, rule in metadata.released():
        if rule.action == "pseudonymize":
            pseudonyms.append(name)
        elif rule.non_identifying is not None:
            exempt[name] = rule.non_identifying.reason
        else:
            qis.append(name)
    problems = []
    for what, col in (("patient_column", risk.patient_column), ("slide_column", risk.slide_column)):
        if col not in pseudonyms:
            problems.append(f"{what} '{col}' is not a pseudonymised column")
    extra = sorted(set(risk.generalisation) - set(qis))
    if extra:
        problems.append(f"generalisation names column(s) {extra} that are not quasi-identifiers")
    if risk.sensitive is not None and risk.sensitive not in qis:
        problems.append(f"sensitive '{risk.sensitive}' is not a quasi-identifier")
    if problems:
        raise PolicyError(
            "risk policy does not fit the metadata policy: " + "; ".join(problems) + " (the "
            "quasi-identifiers are the released columns that are not pseudonyms, minus those "
            "declared non_identifying)"
        )
    return ColumnRoles(tuple(qis), tuple(pseudonyms), exempt)
