"""Conformance on real public captures (the corpus: tests/README.md) against tshark-derived truth (truth.csv).

What must hold: no flow that tshark labels plaintext, no_payload (or unknown) is called
``tls`` by us; our ``tls`` covers at least 99% of the truth's TLS flows; and every remaining
disagreement is explained, flow by flow, in ``tests/data/corpus_disagreements.csv``.  The explanations
file must match the real disagreements exactly: a new disagreement fails, and so does a fixed one that is
still listed.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from analyzer import analyze

from paths import CORPUS, corpus_present
EXPLAINED = Path(__file__).parent / "data" / "corpus_disagreements.csv"

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not corpus_present(), reason="no corpus (--corpus DIR or MTLS_CORPUS)"),
]


def _key(ip1: str, port1, ip2: str, port2) -> frozenset:
    return frozenset({f"{ip1.lower()}:{int(port1)}", f"{ip2.lower()}:{int(port2)}"})


@pytest.fixture(scope="module")
def comparison():
    truth = list(csv.DictReader(open(CORPUS / "truth.csv")))
    by_file = defaultdict(list)
    for t in truth:
        by_file[t["file"]].append(t)
    rows = []
    for name, ts in sorted(by_file.items()):
        report = analyze(CORPUS / "files" / name, include_localhost=True)
        ours = defaultdict(list)
        for r in report.all_flow_rows:
            ours[_key(r["client_ip"], r["client_port"], r["server_ip"], r["server_port"])].append(r["verdict"])
        for t in ts:
            got = ours[_key(t["client_ip"], t["client_port"], t["server_ip"], t["server_port"])]
            rows.append((t, got.pop(0) if got else "missing"))
    table = Counter((t["label"], ours) for t, ours in rows)
    print("\ntruth \\ ours   " + " ".join(f"{o:>10}" for o in ("tls", "plaintext", "unknown", "missing")))
    for label in ("tls", "plaintext", "no_payload", "unknown"):
        print(f"{label:>12}   " + " ".join(f"{table[(label, o)]:>10}" for o in ("tls", "plaintext", "unknown", "missing")))
    return rows


def _agrees(label: str, ours: str) -> bool:
    return label == ours or (label == "no_payload" and ours == "unknown")


def test_no_false_tls(comparison):
    false_tls = [(t["file"], t["client"], t["server"], t["label"]) for t, ours in comparison
                 if ours == "tls" and t["label"] != "tls"]
    assert false_tls == []


def test_tls_recall_at_least_99_percent(comparison):
    # Truth TLS flows whose capture holds a ClientHello or TLS records (all of truth's tls label does).
    tls = [(t, ours) for t, ours in comparison if t["label"] == "tls"]
    found = sum(1 for _, ours in tls if ours == "tls")
    assert found / len(tls) >= 0.99, f"{found}/{len(tls)}"


def test_every_disagreement_is_explained(comparison):
    explained = {(r["file"], r["client"], r["server"]): r for r in csv.DictReader(open(EXPLAINED))}
    actual = {(t["file"], t["client"], t["server"]): (t["label"], ours) for t, ours in comparison
              if not _agrees(t["label"], ours)}
    unexplained = sorted(k for k in actual if k not in explained)
    stale = sorted(k for k in explained if k not in actual)
    wrong = sorted(k for k in actual if k in explained
                   and (explained[k]["truth"], explained[k]["ours"]) != actual[k])
    assert unexplained == [], f"new disagreements: {[(k, actual[k]) for k in unexplained]}"
    assert stale == [], "fixed disagreements still listed in corpus_disagreements.csv"
    assert wrong == [], f"verdicts changed: {[(k, actual[k]) for k in wrong]}"
    assert all(explained[k]["why"].strip() for k in actual)
