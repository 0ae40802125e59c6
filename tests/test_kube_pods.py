"""analyzer.kube.pods: pod lists -> IP at a time, mesh membership, identity, owners; malformed input.

The lab's pods files (``captures/*.pods.json``, written by the lab in ``kubectl get pods -A -o json``
form) are the realistic input; crafted documents (``kube_builders``) cover what the lab does not have:
reused and ambiguous IPs, finished pods, host-network pods, other owners and identity env variants.
"""

from __future__ import annotations

import json

import pytest

from analyzer.errors import AnalyzerError
from analyzer.kube import PodIndex, PodsFormatError, load_pods, parse_pods, parse_pods_json, parse_pods_wide
from analyzer.kube.pods import merge_pod_lists, select_pods, short_identity
from kube_builders import pod, pods_doc

from paths import REPO
LAB_PODS = REPO / "captures" / "demo-transparent.pods.json"
T = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.fixture(scope="module")
def lab() -> PodIndex:
    return load_pods(LAB_PODS)


def by_name(index: PodIndex, deployment: str):
    (found,) = [p for p in index.pods if p.owner_name == deployment]
    return found


# -- the lab's pod list --------------------------------------------------------------------------------
def test_lab_pods_mesh_membership(lab):
    meshed = {p.name.split("-")[0] for p in lab.pods if p.meshed}
    assert meshed == {"web", "emoji", "voting", "vote", "prometheus"}
    assert not by_name(lab, "prometheus-server").meshed
    assert not by_name(lab, "legacy").meshed and not by_name(lab, "coredns").meshed


def test_lab_native_sidecar_is_meshed(lab):
    voting = by_name(lab, "voting")
    assert voting.meshed and voting.native_sidecar  # linkerd-proxy in initContainers, restartPolicy Always
    assert not by_name(lab, "web").native_sidecar


def test_lab_identities_from_the_proxy_env(lab):
    assert by_name(lab, "voting").identity == "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    assert by_name(lab, "vote-bot").short_identity == "default.emojivoto"  # no serviceAccountName set -> default
    assert by_name(lab, "prometheus").short_identity == "prometheus.linkerd-viz"
    assert by_name(lab, "legacy").identity == ""


def test_lab_owners_roll_up_to_deployments(lab):
    assert {(p.owner_kind, p.owner_name) for p in lab.pods} == {
        ("deployment", d) for d in ("web", "emoji", "voting", "vote-bot", "prometheus", "prometheus-server",
                                    "legacy", "coredns")}
    assert by_name(lab, "web").workload("deployment") == ("deployment", "emojivoto", "web")
    assert by_name(lab, "web").workload("namespace") == ("namespace", "emojivoto", "emojivoto")
    assert by_name(lab, "web").workload("pod") == ("pod", "emojivoto", by_name(lab, "web").name)


def test_lab_skip_ports_and_probes(lab):
    voting = by_name(lab, "voting")
    assert (4567, 4567) in voting.skip_inbound and (4191, 4191) in voting.skip_inbound
    assert voting.skip_inbound_annotated == () and voting.skip_outbound == ((4567, 4567), (4568, 4568))
    assert voting.probe_ports == {8080, 4191}
    assert by_name(lab, "coredns").probe_ports == {8181}


def test_lab_resolution(lab):
    ts = by_name(lab, "web").created + 60
    peer = lab.resolve("10.244.0.10", ts)
    assert peer.kind == "pod" and peer.pod.name.startswith("web-") and peer.meshed
    node = lab.resolve("10.244.0.1", ts)
    assert (node.kind, node.name, node.meshed) == ("node", "mtlslab-node", False)
    assert lab.resolve("192.0.2.7", ts).kind == "external"


def test_lab_debug_container(lab):
    assert by_name(lab, "web").has_container("linkerd-debug")
    assert not by_name(lab, "emoji").has_container("linkerd-debug")


# -- meshed and identity --------------------------------------------------------------------------------
def one(obj: dict):
    (found,) = parse_pods_json(pods_doc(obj)).pods
    return found


def test_native_sidecar_needs_restart_policy_always():
    native = one(pod("a", "10.42.0.11", native=True))
    assert native.meshed and native.native_sidecar
    plain_init = pod("b", "10.42.0.12", native=True)
    del plain_init["spec"]["initContainers"][-1]["restartPolicy"]  # an init container that exits: no sidecar
    assert not one(plain_init).meshed


def test_meshed_needs_both_label_and_proxy():
    assert not one(pod("a", "10.42.0.11", meshed=True, proxy_label=False)).meshed
    assert not one(pod("b", "10.42.0.12", meshed=False, proxy_label=True)).meshed


def test_identity_env_is_expanded_with_pod_fields():
    p = one(pod("a", "10.42.0.11", sa="api", namespace="shop",
                identity_env="$(_pod_sa).$(_pod_ns).serviceaccount.identity.linkerd.example.org"))
    assert p.identity == "api.shop.serviceaccount.identity.linkerd.example.org"
    assert short_identity(p.identity) == "api.shop"


def test_identity_env_escape_and_unknown_variables_stay():
    p = one(pod("a", "10.42.0.11", identity_env="$$(_pod_sa).x.serviceaccount.identity.linkerd.cluster.local"))
    # $$ is a literal $, so the text still holds "$(": not usable -> computed from the spec instead.
    assert p.identity == "default.emojivoto.serviceaccount.identity.linkerd.cluster.local"


def test_identity_without_env_is_computed_with_the_trust_domain_from_the_identity_service():
    env = [{"name": "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            "value": "linkerd-identity.linkerd.serviceaccount.identity.linkerd.corp.example"}]
    p = one(pod("a", "10.42.0.11", sa="web", identity_env=None, proxy_env=env))
    assert p.identity == "web.emojivoto.serviceaccount.identity.linkerd.corp.example"
    p = one(pod("b", "10.42.0.12", identity_env=None))
    assert p.identity == "default.emojivoto.serviceaccount.identity.linkerd.cluster.local"


def test_identity_follows_literal_env_variables_defined_earlier():
    env_first = [{"name": "TD", "value": "td.example"}]
    obj = pod("a", "10.42.0.11", sa="s", identity_env=None)
    proxy = obj["spec"]["containers"][0]
    proxy["env"] = env_first + proxy["env"] + [
        {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "value": "$(_pod_sa).$(_pod_ns).serviceaccount.identity.linkerd.$(TD)"}]
    assert one(obj).identity == "s.emojivoto.serviceaccount.identity.linkerd.td.example"


# -- owners ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("owner, labels, template_hash, expected", [
    (("ReplicaSet", "web-7d4b9c"), {}, "7d4b9c", ("deployment", "web")),
    (("ReplicaSet", "web-7d4b9c"), {"linkerd.io/proxy-deployment": "web"}, None, ("deployment", "web")),
    (("ReplicaSet", "batch-x1"), {}, None, ("replicaset", "batch-x1")),
    (("StatefulSet", "db"), {}, None, ("statefulset", "db")),
    (("DaemonSet", "agent"), {}, None, ("daemonset", "agent")),
    (("Job", "migrate-28473"), {}, None, ("job", "migrate-28473")),
    (None, {"linkerd.io/proxy-deployment": "web"}, None, ("deployment", "web")),
    (None, {}, None, ("pod", "a")),
])
def test_owner_rollup(owner, labels, template_hash, expected):
    p = one(pod("a", "10.42.0.11", owner=owner, labels=labels, template_hash=template_hash))
    assert (p.owner_kind, p.owner_name) == expected


# -- IP -> pod at a time -----------------------------------------------------------------------------------
def test_reused_ip_is_attributed_by_time():
    index = parse_pods_json(pods_doc(
        pod("old", "10.42.0.11", created=T - 600, deleted=T - 60),
        pod("new", "10.42.0.11", created=T - 30),
    ))
    assert index.resolve("10.42.0.11", T - 300).pod.name == "old"
    assert index.resolve("10.42.0.11", T).pod.name == "new"
    before = index.resolve("10.42.0.11", T - 45)  # old gone, new not yet created
    assert before.kind == "ambiguous" and "no listed pod held 10.42.0.11" in before.note
    assert {c.name for c in before.candidates} == {"old", "new"}
    assert index.resolve("10.42.0.11", T - 3600).kind == "ambiguous"  # before either existed


def test_two_holders_at_once_are_ambiguous_not_guessed():
    index = parse_pods_json(pods_doc(pod("a", "10.42.0.11", created=T - 100),
                                     pod("b", "10.42.0.11", namespace="other", created=T - 50, meshed=False)))
    peer = index.resolve("10.42.0.11", T)
    assert peer.kind == "ambiguous" and peer.pod is None and peer.meshed is None
    assert "emojivoto/a" in peer.note and "other/b" in peer.note and "at once" in peer.note


def test_finished_pod_releases_its_ip_at_its_last_container_finish():
    index = parse_pods_json(pods_doc(
        pod("job", "10.42.0.11", created=T - 600, phase="Succeeded", finished=T - 100, owner=("Job", "j")),
        pod("svc", "10.42.0.11", created=T - 90),
    ))
    job = index.find("emojivoto", "job")
    assert job.ended == T - 100
    assert index.resolve("10.42.0.11", T - 200).pod.name == "job"
    assert index.resolve("10.42.0.11", T).pod.name == "svc"


def test_time_unknown_resolves_only_a_single_holder():
    index = parse_pods_json(pods_doc(pod("a", "10.42.0.11", created=T - 600, deleted=T - 60),
                                     pod("b", "10.42.0.11", created=T - 30)))
    assert index.resolve("10.42.0.11").kind == "ambiguous"


def test_node_ips_and_host_network_pods_are_node_peers():
    index = parse_pods_json(pods_doc(
        pod("web", "10.42.0.11", host_ip="172.18.0.2"),
        pod("kube-proxy", "172.18.0.3", namespace="kube-system", meshed=False, host_network=True, host_ip="172.18.0.3"),
    ))
    assert index.resolve("172.18.0.2", T).kind == "node"
    hostnet = index.resolve("172.18.0.3", T)
    assert hostnet.kind == "node" and hostnet.name == "node-a" and hostnet.meshed is False
    assert index.resolve("10.99.0.1", T).kind == "external"


def test_ipv6_addresses_are_normalised():
    index = parse_pods_json(pods_doc(pod("v6", "FD00:10:42:0:0:0:0:11")))
    assert index.resolve("fd00:10:42::11", T).pod.name == "v6"


def test_merged_lists_keep_deleted_pods_and_prefer_the_newer_copy():
    before = pods_doc(pod("gone", "10.42.0.11", created=T - 600), pod("web", "10.42.0.12", created=T - 600))
    after = pods_doc(pod("web", "10.42.0.12", created=T - 600, deleted=T + 5), pod("new", "10.42.0.11", created=T))
    merged = parse_pods_json(merge_pod_lists(before, after))
    assert sorted(p.name for p in merged.pods) == ["gone", "new", "web"]
    assert merged.find("emojivoto", "web").ended == T + 5


# -- selecting capture targets -----------------------------------------------------------------------------
def test_select_pods(lab):
    assert [p.name for p in select_pods(lab, "emojivoto", "deploy/web")] == [by_name(lab, "web").name]
    assert select_pods(lab, "emojivoto", by_name(lab, "voting").name)[0].name.startswith("voting-")
    assert select_pods(lab, "emojivoto", "pod/" + by_name(lab, "emoji").name)[0].name.startswith("emoji-")
    with pytest.raises(AnalyzerError, match=r"no pods for deployment/nope in namespace 'emojivoto' \(there: .*deployment/web"):
        select_pods(lab, "emojivoto", "deploy/nope")
    with pytest.raises(AnalyzerError, match="expected KIND/NAME"):
        select_pods(lab, "emojivoto", "svc/web")


def test_select_pods_skips_pods_that_are_not_running():
    index = parse_pods_json(pods_doc(pod("web-1", "10.42.0.11", owner=("ReplicaSet", "web-h"), template_hash="h",
                                         phase="Succeeded")))
    with pytest.raises(AnalyzerError, match="no running pod for deployment/web"):
        select_pods(index, "emojivoto", "deploy/web")


# -- -o wide -----------------------------------------------------------------------------------------------
WIDE_ALL = """\
NAMESPACE     NAME                     READY   STATUS      RESTARTS      AGE   IP            NODE     NOMINATED NODE   READINESS GATES
emojivoto     web-5d8f7c9b4-x2x9z      3/3     Running     2 (3h ago)    5d    10.244.0.10   node-a   <none>           <none>
kube-system   kube-proxy-8xk2p         1/1     Running     0             5d    172.18.0.2    node-a   <none>           <none>
batch         job-28473-abcde          0/1     Completed   0             1h    <none>        node-b   <none>           <none>
"""


def test_wide_text_is_a_fallback_without_mesh_knowledge():
    index = parse_pods(WIDE_ALL, "wide.txt")
    web = index.find("emojivoto", "web-5d8f7c9b4-x2x9z")
    assert web.ips == ("10.244.0.10",) and web.node == "node-a" and web.meshed is None and web.source == "wide"
    assert index.find("batch", "job-28473-abcde").ips == ()
    assert index.resolve("10.244.0.10", T).pod is web  # no times: held at any time


def test_wide_text_without_namespace_column():
    text = ("NAME    READY   STATUS    RESTARTS   AGE   IP          NODE     NOMINATED NODE   READINESS GATES\n"
            "web-1   2/2     Running   0          1m    10.0.0.5    node-a   <none>           <none>\n")
    (p,) = parse_pods_wide(text, "w", namespace="shop").pods
    assert (p.namespace, p.name, p.ips) == ("shop", "web-1", ("10.0.0.5",))


# -- malformed input: one clear line -----------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("{bad json", r"pods\.json: not valid JSON \(.* at line 1 column 2\); expected `kubectl get pods -A -o json` \(or `-o yaml`\) output"),
    ("[1, 2]", r"expected a JSON object \(kind List or Pod\), got a list"),
    ('{"kind": "Service"}', r"no 'items' list \(kind 'Service'\)"),
    ('{"items": [3]}', r"items\[0\] is not an object"),
    ('{"items": [{"metadata": {}}]}', r"items\[0\]: no metadata\.name"),
    ("", r"empty file"),
    ("hello world\n", r"not `kubectl get pods -o json`, `-o yaml` or `-o wide` output"),
])
def test_malformed_lists_raise_one_line(text, message):
    with pytest.raises(PodsFormatError, match=message) as info:
        parse_pods(text, "pods.json")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field, value, message", [
    ("created", "yesterday", r"items\[0\] \(emojivoto/a\): metadata\.creationTimestamp: bad timestamp 'yesterday'"),
    ("ip", "10.0.0.300", r"status\.podIPs?: bad IP address '10\.0\.0\.300'"),
    ("annotation", "80,http", r"config\.linkerd\.io/skip-inbound-ports: bad port list '80,http'"),
])
def test_malformed_fields_name_the_pod(field, value, message):
    kwargs = {"created": {"created": value}, "ip": {}, "annotation": {
        "annotations": {"config.linkerd.io/skip-inbound-ports": value}}}[field]
    obj = pod("a", value if field == "ip" else "10.42.0.11", **kwargs)
    with pytest.raises(PodsFormatError, match=message):
        parse_pods_json(pods_doc(obj), "pods.json")


def test_unreadable_file(tmp_path):
    with pytest.raises(PodsFormatError, match="cannot read the pod list"):
        load_pods(tmp_path / "missing.json")


def test_single_pod_document_and_other_kinds_in_a_list():
    assert len(parse_pods_json(json.dumps(pod("a", "10.42.0.11")))) == 1
    doc = json.loads(pods_doc(pod("a", "10.42.0.11")))
    doc["items"].append({"kind": "Service", "metadata": {"name": "svc"}})
    assert [p.name for p in parse_pods_json(json.dumps(doc)).pods] == ["a"]


def test_annotated_skip_ports_are_kept_apart():
    p = one(pod("a", "10.42.0.11", annotations={"config.linkerd.io/skip-inbound-ports": "5432, 9000-9010",
                                                "config.linkerd.io/skip-outbound-ports": "25"}))
    assert p.skip_inbound_annotated == ((5432, 5432), (9000, 9010))
    assert (5432, 5432) in p.skip_inbound and (4567, 4567) in p.skip_inbound
    assert p.skip_outbound_annotated == ((25, 25),)
