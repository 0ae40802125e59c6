"""``diff OLD.json NEW.json``: which pairs changed status between two audits."""

from __future__ import annotations

import copy
import json

import pytest

from analyzer import analyze
from analyzer.errors import AnalyzerError
from analyzer.report.audit import build_audit
from analyzer.report.diff import diff_reports, summary
from analyzer.report.export import write_report_json

import report_case as rc

from paths import REPO


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    capture, pods = rc.write_case(tmp_path_factory.mktemp("diff"))
    return build_audit(analyze(capture, pods=pods), [capture], pods, resource="deployment")


def _edge(doc: dict, src: str) -> dict:
    return next(e for e in doc["edges"] if e["src"] == src)


def test_identical_reports_have_no_changes(base):
    assert diff_reports(base, copy.deepcopy(base)) == []


def test_worse_better_new_and_gone(base):
    new = copy.deepcopy(base)
    _edge(new, "vote-bot")["status"] = "PLAINTEXT-UNEXPECTED"  # secured -> unexpected: worse
    _edge(new, "emoji")["status"] = "secured"  # unexpected -> secured: better
    new["edges"] = [e for e in new["edges"] if e["src"] != "legacy"]  # gone
    added = dict(_edge(new, "backup"), src="batch", key="ops/batch -> emojivoto/web", status="unverified")
    added_ok = dict(_edge(new, "backup"), src="cron", key="ops/cron -> emojivoto/web", status="secured")
    new["edges"] += [added, added_ok]
    rows = diff_reports(base, new)
    got = {(r["src"], r["change"], r["direction"], r["old_status"], r["new_status"]) for r in rows}
    assert got == {
        ("vote-bot", "changed", "worse", "secured", "PLAINTEXT-UNEXPECTED"),
        ("batch", "added", "worse", "", "unverified"),
        ("cron", "added", "new", "", "secured"),
        ("emoji", "changed", "better", "PLAINTEXT-UNEXPECTED", "secured"),
        ("legacy", "removed", "gone", "plaintext-expected", ""),
    }
    assert [r["direction"] for r in rows] == ["worse", "worse", "new", "better", "gone"]  # worst news first
    assert summary(rows) == "5 pairs changed status (2 worse, 1 better, 1 new, 1 gone)"


def test_reports_grouped_differently_are_refused(base):
    other = copy.deepcopy(base)
    other["options"]["resource"] = "pod"
    with pytest.raises(AnalyzerError, match="same --resource"):
        diff_reports(base, other)


def test_diff_command(cli, base, tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    write_report_json(base, old)
    changed = copy.deepcopy(base)
    _edge(changed, "vote-bot")["status"] = "unverified"
    _edge(changed, "emoji")["status"] = "secured"
    write_report_json(changed, new)
    out = cli("diff", old, old)
    assert out.returncode == 0 and out.stdout == b"" and b"0 pairs changed status" in out.stderr
    out = cli("diff", old, new, "--format", "json")
    assert out.returncode == 1
    rows = json.loads(out.stdout)
    assert [(r["src"], r["direction"]) for r in rows] == [("vote-bot", "worse"), ("emoji", "better")]
    out = cli("diff", old, new, "--worse-only", "--format", "csv")
    assert out.returncode == 1 and out.stdout.decode().splitlines()[1].startswith("changed,worse,emojivoto,vote-bot,")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    out = cli("diff", old, bad)
    assert out.returncode == 2 and b"not an mtls-analyzer report" in out.stderr


def test_two_real_audits_per_workload(cli, tmp_path):
    """The pod capture and the node capture of the same lab: the node sees more pairs, none worse."""
    paths = []
    for name in ("demo-transparent", "node-transparent"):
        target = tmp_path / f"{name}.json"
        out = cli("report", REPO / "captures" / f"{name}.pcapng", "--pods", REPO / "captures" / f"{name}.pods.json",
                  "--resource", "deployment", "--json", target, "-q")
        assert out.returncode == 0, out.stderr
        paths.append(target)
    out = cli("diff", *paths, "--format", "json")
    rows = json.loads(out.stdout)
    assert out.returncode == 1 and rows
    assert {r["change"] for r in rows} == {"added"} and {r["direction"] for r in rows} == {"new"}
