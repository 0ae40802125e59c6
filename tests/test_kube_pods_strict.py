"""Pod lists read strictly: every field type-checked, one ``Error:`` line naming the item and the field
(exit 2, never a traceback); lists without pods named by what they hold; the same pod twice is one pod;
finished pods let go of their IP; ``-o yaml`` read like ``-o json``.

Inputs are built here: wrong-typed variants of one realistic pod (``kube_builders.injected_pod``, shaped
like the proxy injector's output), deeply nested documents, and Linkerd-shaped lists in JSON and YAML.
"""

from __future__ import annotations

import copy
import json

import pytest

import kube_builders as kb
from analyzer.kube import PodsFormatError, parse_pods
from analyzer.kube.podlist import parse_pods_yaml

WEB = kb.injected_pod("web-6d8f9c7b5d-x2x7k", "10.42.0.12", sa="web", deployment="web")
WHERE = r"pods\.json: items\[0\] \((emojivoto/)?web-6d8f9c7b5d-x2x7k\): "  # the namespace once it is read

# (path into the pod, wrong value, the field the error must name).  Proxy is containers[0], the app
# containers[1]; proxy env[0] is a fieldRef, env[4] a literal value.
VARIANTS = [
    (("metadata", "labels"), ["app=web"], "metadata.labels is a list, expected an object"),
    (("metadata", "labels", "app"), 3, r"metadata.labels\['app'\] is a number, expected a string"),
    (("metadata", "annotations"), "linkerd.io/inject=enabled", "metadata.annotations is a string, expected an object"),
    (("metadata", "annotations", "linkerd.io/inject"), True, r"metadata.annotations\['linkerd.io/inject'\] is a boolean"),
    (("metadata", "namespace"), ["emojivoto"], "metadata.namespace is a list, expected a string"),
    (("metadata", "uid"), 7, "metadata.uid is a number, expected a string"),
    (("metadata", "creationTimestamp"), 1714557600, "metadata.creationTimestamp is a number, expected a string"),
    (("metadata", "ownerReferences"), {"kind": "ReplicaSet"}, "metadata.ownerReferences is an object, expected a list"),
    (("metadata", "ownerReferences", 0), "web-6d8f9c7b5d", r"metadata.ownerReferences\[0\] is a string, expected an object"),
    (("metadata", "ownerReferences", 0, "name"), 1, r"metadata.ownerReferences\[0\].name is a number"),
    (("metadata", "ownerReferences", 0, "controller"), "true", r"metadata.ownerReferences\[0\].controller is a string, expected a boolean"),
    (("spec",), [], "spec is a list, expected an object"),
    (("spec", "containers"), {"name": "web"}, "spec.containers is an object, expected a list"),
    (("spec", "containers", 1), "web", r"spec.containers\[1\] is a string, expected an object"),
    (("spec", "containers", 0, "name"), 5, r"spec.containers\[0\].name is a number, expected a string"),
    (("spec", "containers", 0, "env"), {"_pod_ns": "x"}, r"spec.containers\[0\].env is an object, expected a list"),
    (("spec", "containers", 0, "env", 0), "_pod_name", r"spec.containers\[0\].env\[0\] is a string"),
    (("spec", "containers", 0, "env", 0, "valueFrom"), "metadata.name", r"spec.containers\[0\].env\[0\].valueFrom is a string, expected an object"),
    (("spec", "containers", 0, "env", 0, "valueFrom", "fieldRef"), ["metadata.name"], r"spec.containers\[0\].env\[0\].valueFrom.fieldRef is a list"),
    (("spec", "containers", 0, "env", 4, "value"), 42, r"spec.containers\[0\].env\[4\].value is a number, expected a string"),
    (("spec", "containers", 1, "readinessProbe"), [{"httpGet": {}}], r"spec.containers\[1\].readinessProbe is a list, expected an object"),
    (("spec", "containers", 1, "readinessProbe", "httpGet"), "/", r"spec.containers\[1\].readinessProbe.httpGet is a string, expected an object"),
    (("spec", "containers", 1, "readinessProbe", "httpGet", "port"), [8080], r"spec.containers\[1\].readinessProbe.httpGet.port is a list, expected an integer or a string"),
    (("spec", "containers", 1, "ports"), {"http": 8080}, r"spec.containers\[1\].ports is an object, expected a list"),
    (("spec", "containers", 1, "ports", 0, "containerPort"), "8080", r"spec.containers\[1\].ports\[0\].containerPort is a string, expected an integer"),
    (("spec", "initContainers", 0, "args"), "--inbound-ports-to-ignore 4190", r"spec.initContainers\[0\].args is a string, expected a list"),
    (("spec", "initContainers", 0, "args", 1), 4143, r"spec.initContainers\[0\].args\[1\] is a number, expected a string"),
    (("spec", "serviceAccountName"), ["web"], "spec.serviceAccountName is a list, expected a string"),
    (("spec", "hostNetwork"), "false", "spec.hostNetwork is a string, expected a boolean"),
    (("spec", "nodeName"), 1, "spec.nodeName is a number, expected a string"),
    (("status",), "Running", "status is a string, expected an object"),
    (("status", "podIP"), 168427532, "status.podIP is a number, expected a string"),
    (("status", "podIPs"), "10.42.0.12", "status.podIPs is a string, expected a list"),
    (("status", "podIPs", 0), "10.42.0.12", r"status.podIPs\[0\] is a string, expected an object"),
    (("status", "phase"), 1, "status.phase is a number, expected a string"),
]


def mutated(path: tuple, value) -> dict:
    obj = copy.deepcopy(WEB)
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


@pytest.mark.parametrize("path, value, message", VARIANTS, ids=[".".join(map(str, v[0])) for v in VARIANTS])
def test_a_wrong_type_names_the_item_and_the_field(path, value, message):
    with pytest.raises(PodsFormatError, match=WHERE + message) as info:
        parse_pods(kb.pods_doc(mutated(path, value)), "pods.json")
    assert "\n" not in str(info.value)


def test_the_unmodified_pod_reads(tmp_path):
    (pod,) = parse_pods(kb.pods_doc(WEB), "pods.json").pods
    assert (pod.name, pod.ips, pod.meshed, pod.owner_kind, pod.owner_name) == (
        "web-6d8f9c7b5d-x2x7k", ("10.42.0.12",), True, "deployment", "web")
    assert pod.identity == "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    assert pod.probe_ports == {4191, 8080} and pod.created is not None and pod.ended is None


@pytest.mark.parametrize("path, value, message", VARIANTS[::5], ids=[".".join(map(str, v[0])) for v in VARIANTS[::5]])
def test_the_cli_says_one_error_line_and_exits_2(cli, tmp_path, path, value, message):
    pods = tmp_path / "pods.json"
    pods.write_text(kb.pods_doc(mutated(path, value)))
    capture = tmp_path / "empty.pcap"
    capture.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    result = cli("analyze", capture, "--pods", pods)
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err, err
    (line,) = err.splitlines()
    assert line.startswith("Error: ") and "web-6d8f9c7b5d-x2x7k)" in line


def test_an_item_kind_of_the_wrong_type():
    doc = json.loads(kb.pods_doc(WEB))
    doc["items"][0]["kind"] = ["Pod"]
    with pytest.raises(PodsFormatError, match=r"items\[0\]: kind is a list, expected a string"):
        parse_pods(json.dumps(doc), "pods.json")


def test_hostile_names_in_an_error_are_escaped_on_stderr(cli, tmp_path):
    obj = mutated(("metadata", "labels"), ["x"])
    obj["metadata"]["name"] = "web\x1b]0;pwned\x07"
    pods = tmp_path / "pods.json"
    pods.write_text(kb.pods_doc(obj))
    result = cli("analyze", tmp_path / "none.pcap", "--pods", pods)
    assert result.returncode == 2
    assert b"\x1b" not in result.stderr and b"\x07" not in result.stderr
    assert "(emojivoto/web\\x1b]0;pwned\\x07): metadata.labels is a list" in result.stderr.decode()


# -- nesting ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    '{"items": ' + "[" * 200_000 + "]" * 200_000 + "}",
    '{"kind": "List", "items": [' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "]}",
    "items:\n- " + "[" * 100_000 + "]" * 100_000 + "\n",
])
def test_a_deeply_nested_file_is_one_error(text):
    with pytest.raises(PodsFormatError, match=r"nested too deeply|is not an object|no pods"):
        parse_pods(text, "pods.json")


# -- kinds -----------------------------------------------------------------------------------------------
def _deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "emojivoto"},
            "spec": {"replicas": 1}}


def test_a_list_without_pods_names_the_kinds_it_holds():
    doc = json.loads(kb.pods_doc())
    doc["items"] = [_deployment("web"), _deployment("emoji"), {"kind": "ConfigMap", "metadata": {"name": "c"}}]
    with pytest.raises(PodsFormatError, match=r"pods\.json: no pods in the list \(it holds 1 ConfigMap, 2 Deployment\)"):
        parse_pods(json.dumps(doc), "pods.json")
    with pytest.raises(PodsFormatError, match=r"no pods in the list \(it holds nothing\)"):
        parse_pods(kb.pods_doc(), "pods.json")


def test_services_and_endpointslices_beside_pods_go_to_the_service_index():
    doc = json.loads(kb.pods_doc(WEB))
    doc["items"] += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-svc", "namespace": "emojivoto"},
                      "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80, "targetPort": 8080}]}},
                     {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "web-svc-abcde", "namespace": "emojivoto",
                                   "labels": {"kubernetes.io/service-name": "web-svc"}},
                      "endpoints": [{"addresses": ["10.42.0.12"]}], "ports": [{"port": 8080}]}]
    index = parse_pods(json.dumps(doc), "pods.json")
    assert [p.name for p in index.pods] == ["web-6d8f9c7b5d-x2x7k"]
    assert index.services is not None and index.notes == []


def test_a_list_of_services_without_pods_is_an_error_naming_its_kinds():
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-svc", "namespace": "emojivoto"},
         "spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "emojivoto"}}]}
    with pytest.raises(PodsFormatError, match=r"no pods in the list \(it holds 1 Deployment, 1 Service\)"):
        parse_pods(json.dumps(doc), "pods.json")


# -- duplicates ------------------------------------------------------------------------------------------
def test_the_same_pod_twice_is_one_holder_with_a_note():
    index = parse_pods(kb.pods_doc(WEB, kb.pod("emoji", "10.42.0.14"), WEB), "pods.json")
    assert len(index) == 2
    peer = index.resolve("10.42.0.12", 1_714_600_000.0)
    assert peer.kind == "pod" and peer.pod.notes == (
        "emojivoto/web-6d8f9c7b5d-x2x7k is listed 2 times (items 0, 2); read as one pod, the last copy",)


def test_the_duplicate_note_reaches_the_edge(tmp_path):
    import pcapgen as pg
    from analyzer import analyze

    capture = tmp_path / "c.pcap"
    capture.write_bytes(pg.ether_pcap(pg.tcp_flow([("c", pg.HTTP_REQUEST), ("s", pg.HTTP_RESPONSE)],
                                                  client=pg.Endpoint("10.42.0.14", 40000),
                                                  server=pg.Endpoint("10.42.0.12", 8080))))
    web = kb.injected_pod("web-6d8f9c7b5d-x2x7k", "10.42.0.12", sa="web", deployment="web", created="2020-01-01T00:00:00Z")
    pods = tmp_path / "pods.json"
    pods.write_text(kb.pods_doc(web, kb.pod("emoji", "10.42.0.14"), web))
    (edge,) = analyze(capture, pods=pods).edge_rows
    assert edge["dst"] == "web-6d8f9c7b5d-x2x7k" and edge["dst_kind"] == "pod"
    assert "is listed 2 times" in edge["notes"]


# -- terminal pods ---------------------------------------------------------------------------------------
def test_an_evicted_pod_without_finished_at_releases_its_ip_at_its_last_known_time():
    """A Failed pod (evicted) keeps status.podIP but no finishedAt; a later pod reuses the IP."""
    old = kb.injected_pod("web-6d8f9c7b5d-old00", "10.42.0.12", sa="web", deployment="web",
                          created="2024-05-01T10:00:00Z", status_extra=kb.evicted_status("2024-05-01T11:00:00Z"))
    old["status"]["podIP"], old["status"]["podIPs"] = "10.42.0.12", [{"ip": "10.42.0.12"}]
    new = kb.injected_pod("web-6d8f9c7b5d-new00", "10.42.0.12", sa="web", deployment="web",
                          created="2024-05-01T11:05:00Z")
    index = parse_pods(kb.pods_doc(old, new), "pods.json")
    ended = {p.name: p.ended for p in index.pods}
    assert ended["web-6d8f9c7b5d-old00"] == 1714561200.0  # 2024-05-01T11:00:00Z, the Ready condition's change
    later = index.resolve("10.42.0.12", 1714561200.0 + 600)
    assert later.kind == "pod" and later.pod.name == "web-6d8f9c7b5d-new00"


def test_a_finished_pod_with_no_time_at_all_releases_its_ip_at_creation():
    obj = kb.pod("job-1", "10.42.0.30", phase="Succeeded", created="2024-05-01T10:00:00Z")
    (pod,) = parse_pods(kb.pods_doc(obj), "pods.json").pods
    assert pod.ended == pod.created == 1714557600.0


def test_finished_at_still_wins_when_present():
    obj = kb.pod("job-1", "10.42.0.30", phase="Succeeded", created="2024-05-01T10:00:00Z",
                 finished="2024-05-01T10:30:00Z")
    (pod,) = parse_pods(kb.pods_doc(obj), "pods.json").pods
    assert pod.ended == 1714559400.0


# -- YAML ------------------------------------------------------------------------------------------------
LIST = (WEB, kb.injected_pod("emoji-5c7b8f9d4-q8r2t", "10.42.0.14", sa="emoji", deployment="emoji"),
        kb.pod("legacy", "10.42.0.13", namespace="legacy", meshed=False),
        kb.pod("batch-1", "10.42.0.30", phase="Succeeded", finished="2024-05-01T10:30:00Z"))


def test_yaml_reads_like_json():
    pytest.importorskip("yaml")
    from_json = parse_pods(kb.pods_doc(*LIST), "pods.json").pods
    from_yaml = parse_pods(kb.pods_yaml(*LIST), "pods.yaml").pods
    assert from_yaml == from_json and len(from_yaml) == 4


def test_yaml_with_unquoted_timestamps_as_published_dumps_have_them():
    pytest.importorskip("yaml")
    text = kb.pods_yaml(WEB).replace("'2024-05-01T10:00:00Z'", "2024-05-01T10:00:00Z")
    assert "creationTimestamp: 2024-05-01T10:00:00Z" in text
    (pod,) = parse_pods(text, "pods.yaml").pods
    assert pod.created == 1714557600.0


def test_yaml_errors_are_one_line():
    pytest.importorskip("yaml")
    with pytest.raises(PodsFormatError, match=r"pods\.yaml: not valid YAML \(did not find expected node content at line 3 column 3\)"):
        parse_pods("apiVersion: v1\nitems: [\n  - {a: 1\n", "pods.yaml")
    with pytest.raises(PodsFormatError, match=r"expected a YAML object \(kind List or Pod\), got a list"):
        parse_pods_yaml("- a\n- b\n", "pods.yaml")
    with pytest.raises(PodsFormatError, match=r"items\[0\] \(emojivoto/web-6d8f9c7b5d-x2x7k\): metadata.labels is a list"):
        parse_pods(kb.pods_yaml(mutated(("metadata", "labels"), ["a"])), "pods.yaml")


def test_yaml_through_the_cli(cli, tmp_path):
    pytest.importorskip("yaml")
    import report_case as rc

    capture, pods = rc.write_case(tmp_path)
    yaml_pods = tmp_path / "pods.yaml"
    yaml_pods.write_text(kb.pods_yaml(*json.loads(pods.read_text())["items"]))
    by_json = cli("analyze", capture, "--pods", pods, "--format", "json")
    by_yaml = cli("analyze", capture, "--pods", yaml_pods, "--format", "json")
    assert by_yaml.returncode == 0, by_yaml.stderr.decode()
    assert json.loads(by_yaml.stdout) == json.loads(by_json.stdout) != []
