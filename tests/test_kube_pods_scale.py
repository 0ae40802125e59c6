"""Large pod lists: reading one costs the pods kept, not the file's text or its parsed document.

``load_pods`` streams JSON (``JsonStream``) and YAML (``yaml_entries``) item by item, so the memory it
needs beyond the ``PodIndex`` it returns is a bounded buffer, the same for a small list and one four
times larger, and each pod kept costs a few KB.  Measured with tracemalloc on lists shaped like the proxy
injector's output (``kube_builders.injected_pod``); ``benchmarks/podlist.py`` measures 50,000 pods.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
import yaml

from analyzer.kube import podlist
from analyzer.kube.podlist import load_pods, parse_pods
from kube_builders import injected_pod

KEPT_PER_POD = 4096  # bytes a pod may cost in the PodIndex (about 2.6 KB today)
OVERHEAD = 1_500_000  # bytes beyond what is kept, whatever the size of the list


def pods(n: int) -> list[dict]:
    return [injected_pod(f"web-{i:05d}", f"10.42.{i >> 8}.{i & 255}", f"ns-{i % 7}", deployment=f"web-{i // 10}")
            for i in range(n)]


def write(path, n: int, fmt: str):
    doc = {"apiVersion": "v1", "kind": "List", "items": pods(n), "metadata": {"resourceVersion": ""}}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # what yaml.safe_dump writes, faster
    path.write_text(json.dumps(doc, indent=4) if fmt == "json" else yaml.dump(doc, Dumper=dumper))
    return path


def traced_load(path) -> tuple[int, int, int]:
    """(pods, bytes kept after loading, peak bytes while loading)."""
    tracemalloc.start()
    try:
        index = load_pods(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return len(index.pods), kept, peak


@pytest.mark.parametrize("fmt, small, large", [("json", 200, 800), ("yaml", 100, 400)])
def test_reading_a_pod_list_costs_what_is_kept_not_the_text(tmp_path, fmt, small, large):
    runs = {}
    for n in (small, large):
        path = write(tmp_path / f"pods{n}.{fmt}", n, fmt)
        runs[n] = traced_load(path)
        count, kept, peak = runs[n]
        assert count == n
        assert kept <= KEPT_PER_POD * n, f"{kept / n:.0f} B per pod kept"
        assert peak - kept <= OVERHEAD, f"{(peak - kept) / 1e6:.1f} MB beyond the pods for a {path.stat().st_size / 1e6:.1f} MB file"
    # The overhead is a buffer, not a share of the file: four times the pods, (almost) the same overhead.
    assert (runs[large][2] - runs[large][1]) - (runs[small][2] - runs[small][1]) < 400_000


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_streaming_reads_the_same_pods_as_the_text_parser(tmp_path, fmt):
    """``load_pods`` (streamed from the file) and ``parse_pods`` (from the text) build the same index."""
    path = write(tmp_path / f"pods.{fmt}", 60, fmt)
    streamed, whole = load_pods(path), parse_pods(path.read_text(), str(path))
    assert streamed.pods == whole.pods and streamed.notes == whole.notes


YAML_CASES = [
    "a: &x {b: 1, c: [yes, no, ~, 0x1f, 1_000, 3.5, .inf, '07', \"x\"]}\nd: *x\n",
    "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
    "m:\n  <<: [{a: 1}, {a: 2, b: 2}]\n",
    "s: !!str 5\ni: !!int '5'\nf: !!float '1'\nn: !!null ''\nb: !!bool 'true'\n",
    "- [1, [2, [3, [4]]]]\n- {k: {k: {k: v}}}\n- ''\n- |\n  block\n  text\n",
    "t: 2024-05-01T10:00:00Z\n",  # timestamps stay strings (the pod list's rule), elsewhere the same
    "dup: 1\ndup: 2\n",
    "? [a, b]\n: c\n",
    "? {a: 1}\n: c\n",
    "x: *nope\n",
    "!!set {a, b}\n",
]


@pytest.mark.parametrize("text", YAML_CASES)
def test_yaml_events_build_what_safe_load_builds(text):
    """The event builder against PyYAML's own safe loader (timestamps aside): the same data, or an error
    for the same input."""
    from analyzer.kube.streams import YamlBuilder, yaml_loader

    class Plain(yaml.SafeLoader):  # the safe loader without timestamps, as pod lists read them
        yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    try:
        expected = yaml.load(text, Loader=Plain)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        expected = yaml.YAMLError
    loader = yaml_loader(yaml)(text)
    try:
        loader.get_event(), loader.get_event()
        got = YamlBuilder(loader, yaml).value()
    except yaml.YAMLError:
        got = yaml.YAMLError
    finally:
        loader.dispose()
    if text.startswith("!!set"):
        assert got is yaml.YAMLError  # tagged collections other than map and seq: an error, never a guess
    else:
        assert got == expected


def cpu_per_pod(path, runs: int = 3) -> float:
    """The least CPU seconds per pod of ``load_pods`` over a few runs (CPU, not wall: the machine is shared)."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        count = len(load_pods(path).pods)
        best = min(best, time.process_time() - start)
    return best / count


def test_yaml_costs_about_what_json_costs_per_pod(tmp_path, monkeypatch):
    """YAML as kubectl writes it is read line by line, within ~2x of the JSON list's time (the parser's
    events alone, the path for other YAML, take ~3.5x): measured against both in the same run."""
    json_s = cpu_per_pod(write(tmp_path / "pods.json", 400, "json"))
    yaml_path = write(tmp_path / "pods.yaml", 400, "yaml")
    yaml_s = cpu_per_pod(yaml_path)
    monkeypatch.setattr(podlist, "_read_yaml_entries", lambda *a: None)
    events_s = cpu_per_pod(yaml_path)
    assert yaml_s < 2.6 * json_s, f"YAML {yaml_s * 1e6:.0f} us a pod, JSON {json_s * 1e6:.0f} us"
    assert yaml_s < 0.75 * events_s, f"YAML {yaml_s * 1e6:.0f} us a pod, by the parser's events {events_s * 1e6:.0f} us"


def test_a_list_read_again_by_the_parser_costs_what_is_kept_once(tmp_path):
    """A list the line reader gives up on at its very end is read again by the parser from the start; the
    pods of the first reading are gone by then, so the memory is still one list's pods and a buffer."""
    path = write(tmp_path / "pods.yaml", 1000, "yaml")  # 2.6 MB of pods: held twice, they would show
    text = path.read_text()
    assert text.endswith("metadata:\n  resourceVersion: ''\n")
    path.write_text(text.replace("metadata:\n  resourceVersion: ''\n", "metadata: {resourceVersion: ''}\n"))
    count, kept, peak = traced_load(path)
    assert count == 1000
    assert peak - kept <= OVERHEAD, f"{(peak - kept) / 1e6:.1f} MB beyond the pods"
