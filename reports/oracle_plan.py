"""Which oracle checks which campaign case, and the account of which oracle saw which cases.

Every oracle that supports a case checks it, with two stated exceptions, both pure functions of the
campaign's config and the case (never of which worker ran it or what it had cached, so a campaign's
records are the same in-process, on a pool or on Dask):

- ``--subsample NAME=K``: NAME checks the cases whose index is a multiple of K;
- *adaptive* oracles (by default ``sympy_exact``): an oracle with a cost model and a budget B checks a
  case with probability ``min(1, B / cost)``, drawn from the case's own seed.  Every case cheaper than
  the budget is checked; a case ten times dearer is checked one time in ten.  The expected cost per
  case is at most B, whatever the mix of architectures, and no size class is left out.

The exact oracle is the one that needs this: it compiles a symbolic derivative per architecture, and a
campaign's architectures are almost all new (487 distinct in the first 500 cases of seed 1), so its
cost per case is ~10-30 times all the other oracles' together, dominated by the largest networks
(the dearest half of the cases take ~90 % of its time).  "Every case whose architecture is already
compiled" would be cheaper still but would depend on each worker's cache: the same campaign would check
different cases on two runs.

:func:`tally` counts, from the records themselves, which oracle compared which case; ``campaign.json``
and the report show those counts beside the rule that chose them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from oracles.registry import get_oracle, oracle_names
from oracles.verdicts.records import Record
from reference_impl.case import Case
from reference_impl.spec import Spec

CostModel = Callable[[Spec, int], float]

# sympy_exact's cost in units of "one forward-mode operation evaluated for one example" (≈ 4 µs on the
# 2-core development machine): compiling an architecture costs about six evaluations of one example
# (measured over 150 campaign cases: compile ≈ 50 µs and evaluation ≈ 8.6 µs per unit of
# forward_mode_size under load, correlation of the logarithms ≈ 0.9).
EXACT_COMPILE_EVALUATIONS = 6


def exact_cost(spec: Spec, batch: int) -> float:
    from oracles.sympy_exact import forward_mode_size

    return float(forward_mode_size(spec) * (EXACT_COMPILE_EVALUATIONS + batch))


COST_MODELS: dict[str, CostModel] = {"sympy_exact": exact_cost}

# Budget per case, in the cost model's units.  1,500 keeps the exact oracle's share of a default
# campaign's time near that of the four other oracles together; it then checks ~30 % of the cases:
# every architecture up to ~4 layers of ~4 units, and a 1/cost share of the larger ones.
DEFAULT_ADAPTIVE: dict[str, float] = {"sympy_exact": 1500.0}

# Why an oracle did not check a case.
POLICY, UNSUPPORTED = "policy", "unsupported"


def draw(seed: int, index: int, oracle: str) -> float:
    """A uniform number in [0, 1) fixed by the case and the oracle's name."""
    return float(np.random.default_rng([seed, index, 0x5E1EC7, zlib.crc32(oracle.encode())]).random())


def selected(
    oracle: str, case: Case, index: int, seed: int, subsample: Mapping[str, int], adaptive: Mapping[str, float]
) -> bool:
    """Whether the policy asks ``oracle`` about this case (before the oracle's own ``supports``)."""
    if index % subsample.get(oracle, 1) != 0:
        return False
    budget = adaptive.get(oracle)
    if budget is None or oracle not in COST_MODELS:
        return True
    cost = COST_MODELS[oracle](case.spec, case.batch)
    return cost <= budget or draw(seed, index, oracle) < budget / cost


class Policy(Protocol):
    """What the plan reads from a campaign's config (:class:`reports.campaign.CampaignConfig`)."""

    @property
    def seed(self) -> int: ...
    @property
    def oracles(self) -> tuple[str, ...] | None: ...
    @property
    def subsample(self) -> dict[str, int]: ...
    @property
    def adaptive(self) -> dict[str, float]: ...


def requested_oracles(config: Policy) -> list[str]:
    return list(config.oracles) if config.oracles else oracle_names()


def oracle_names_for(config: Policy, index: int, case: Case) -> list[str]:
    """The oracles the policy asks about case ``index`` (before each oracle's own ``supports`` filter)."""
    return [
        n for n in requested_oracles(config) if selected(n, case, index, config.seed, config.subsample, config.adaptive)
    ]


def case_plan(config: Policy, index: int, case: Case) -> tuple[list[str], dict[str, str]]:
    """The oracles that check case ``index``, and why each other requested oracle does not."""
    names = oracle_names_for(config, index, case)
    supported = [n for n in names if get_oracle(n).supports_case(case)]
    skipped = {n: UNSUPPORTED for n in names if n not in supported}
    for name in requested_oracles(config):
        if name not in names:
            skipped[name] = UNSUPPORTED if not get_oracle(name).supports_case(case) else POLICY
    return supported, skipped


def rule(name: str, subsample: Mapping[str, int], adaptive: Mapping[str, float]) -> str:
    """The selection rule of one oracle, in words."""
    parts = []
    if subsample.get(name, 1) > 1:
        parts.append(f"cases whose index is a multiple of {subsample[name]} (--subsample)")
    if name in adaptive and name in COST_MODELS:
        parts.append(
            f"adaptive: every case with estimated cost ≤ {adaptive[name]:g}, others with probability "
            f"{adaptive[name]:g}/cost drawn from the case seed (--subsample {name}=1: every case)"
        )
    return "; ".join(parts) if parts else "every case it supports"


CHECKS = ("gradient", "delta", "projection")


@dataclass
class Tally:
    """Per oracle: cases compared, and cases left out by the policy or by ``supports``."""

    cases: int = 0
    compared: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, records: Iterable[Record], skipped: Mapping[str, str]) -> None:
        self.add_checks({(r.oracle, r.check) for r in records}, skipped)

    def add_checks(self, checks: Iterable[tuple[str, str]], skipped: Mapping[str, str]) -> None:
        """:meth:`add` from a case's (oracle, check) pairs alone (what resuming keeps of a stored case)."""
        self.cases += 1
        for name in {oracle for oracle, check in checks if check in CHECKS or check == "protocol"}:
            self.compared[name] = self.compared.get(name, 0) + 1
        for name, reason in skipped.items():
            counts = self.skipped.setdefault(name, {})
            counts[reason] = counts.get(reason, 0) + 1

    def to_dict(
        self, names: Iterable[str], subsample: Mapping[str, int], adaptive: Mapping[str, float]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in sorted(set(names) | set(self.compared) | set(self.skipped)):
            seen = self.compared.get(name, 0)
            out[name] = {
                "cases": seen,
                "share": round(seen / self.cases, 4) if self.cases else 0.0,
                "not_selected": self.skipped.get(name, {}).get(POLICY, 0),
                "unsupported": self.skipped.get(name, {}).get(UNSUPPORTED, 0),
                "rule": rule(name, subsample, adaptive),
            }
        return {"cases": self.cases, "oracles": out}
