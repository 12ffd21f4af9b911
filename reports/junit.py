"""JUnit XML for CI dashboards: one test suite per oracle, one test case per campaign case.

A case fails in an oracle's suite when any of its records against that oracle failed; a case no oracle
could check is ``skipped``.  The failure text is the records' own explanation, so a dashboard shows the
same words as the terminal and the HTML report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from reports.records import Record, read_records


def junit_tree(records: Iterable[Record]) -> ET.ElementTree:
    by_suite: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_suite[record.oracle][record.case_id].append(record)
    root = ET.Element("testsuites", name="backprop-check")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for oracle in sorted(by_suite):
        cases = by_suite[oracle]
        suite = ET.SubElement(root, "testsuite", name=f"backprop-check.{oracle}")
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for cid in sorted(cases):
            recs = cases[cid]
            elapsed = sum(r.elapsed for r in recs)
            testcase = ET.SubElement(
                suite, "testcase", classname=f"{recs[0].subject}.{oracle}", name=cid, time=f"{elapsed:.6f}"
            )
            counts["tests"] += 1
            failed = [r for r in recs if r.failed]
            if failed:
                counts["failures"] += 1
                node = ET.SubElement(
                    testcase, "failure", message=failed[0].summary()[:500], type=failed[0].category or ""
                )
                node.text = "\n\n".join(r.explain() for r in failed)
            elif all(r.verdict == "skip" for r in recs):
                counts["skipped"] += 1
                ET.SubElement(testcase, "skipped", message=recs[0].message)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(read_records(results)).write(destination, encoding="utf-8", xml_declaration=True)
    return destination
