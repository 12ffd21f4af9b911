"""The claim catalogue: every audited claim in article order, and the sections left unchecked (with why)."""

from __future__ import annotations

from reports.audit.consistency import consistency_3_2_vs_4_2, consistency_3_4_vs_4_3
from reports.audit.core import Claim
from reports.audit.layerwise import claim_4_1, claim_4_2, claim_4_3, claim_4_4
from reports.audit.listings import listing_claims
from reports.audit.single_neuron import claim_3_1, claim_3_2, claim_3_3, claim_3_4, claim_3_5

UNCHECKED: tuple[tuple[str, str], ...] = (
    ("§2.1", "describes the layered structure in words; §3.1/§4.1 make it checkable"),
    ("§2.2", "names MSE and cross-entropy as common losses; §3.2/§4.2 give formulas, audited there"),
    ("§2.3", "says updating by the partial derivatives minimises L; audited as the descent claims §3.5/§4.4"),
)


def formula_claims() -> list[Claim]:
    return [
        claim_3_1(),
        claim_3_2(),
        claim_3_3(),
        claim_3_4(),
        claim_3_5(),
        claim_4_1(),
        claim_4_2(),
        claim_4_3(),
        claim_4_4(),
        consistency_3_2_vs_4_2(),
        consistency_3_4_vs_4_3(),
    ]


def all_claims() -> list[Claim]:
    return [*formula_claims(), *listing_claims()]
