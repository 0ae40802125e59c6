"""Network namespaces, links, nftables rules and lab processes: everything `up`/`down` touch on the host.

Layout (all addresses exist only inside namespaces the lab created; the root namespace gets nothing):

    mtlslab-node   bridge mtlslab-br0 10.244.0.1/24, one veth end per pod of the node (mtlslab-vN)
    mtlslab-node2  bridge mtlslab-br1 10.244.1.1/24, the same for the second node's pods
                   the two nodes are joined by a transit veth (mtlslab-t0 10.244.255.1/30 in node,
                   mtlslab-t1 10.244.255.2/30 in node2), forward IPv4 and route each other's pod subnet;
                   each node's table ``mtlslab-services`` plays kube-proxy (see :func:`setup_services`)
    mtlslab-<pod>  eth0 (peer of mtlslab-vN) with the pod IP, routes to 10.244.0.0/16 and to the ClusterIPs
                   (10.96.0.0/16) via its node, lo, and for meshed pods an nftables table ``mtlslab`` that
                   plays linkerd-init (see :func:`nft_rules`)

Veths are created *inside* the node namespace and their peer is moved straight into the pod namespace,
so not even a transient link appears in the root namespace. Every name starts with ``mtlslab-``, so
:func:`teardown` removes exactly what the lab made, also after a crash, and is idempotent.

Processes are started with ``ip netns exec`` in their own session; their PIDs are recorded in
``<state>/pids``. Teardown kills recorded PIDs and then any process still inside a ``mtlslab-`` namespace
(``ip netns pids``), which by construction the lab started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from analyzer.lab.topology import (
    INBOUND_SKIP_PORTS, NODE, NODE_IPS, NODE_NAMES, NODE_SUBNETS, OUTBOUND_SKIP_PORTS, PODS_SUPERNET, PREFIX,
    PROXY_INBOUND_PORT, PROXY_MARK, PROXY_OUTBOUND_PORT, SERVICE_SUBNET, SUBNET, TRANSIT, Lab,
)

log = logging.getLogger(__name__)

BRIDGE = PREFIX + "br0"
NODE_NS = PREFIX + NODE
REPO_ROOT = Path(__file__).resolve().parents[2]
KILL_GRACE_S = 3.0


class LabError(RuntimeError):
    """A host command failed; the message says which and why."""


class LabRequestError(LabError):
    """The command cannot do what was asked (the lab is not up, no such pod): bad input, exit 2."""


def run(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    """Run a host command (never through a shell), bounded to 30 s."""
    log.debug("run: %s", " ".join(args))
    try:
        proc = subprocess.run(args, capture_output=capture, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise LabError(f"{args[0]} not found: install it (see analyzer/lab/README.md)") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({proc.returncode}): {(proc.stderr or '').strip()}")
    return proc


def lab_namespaces() -> list[str]:
    proc = run("ip", "netns", "list", check=False)
    return sorted(line.split()[0] for line in proc.stdout.splitlines()
                  if line.strip() and line.split()[0].startswith(PREFIX))


def nft_rules(lab: Lab) -> str:
    """linkerd-init's rules in nftables form (reference: "iptables ... only TCP is redirected").

    Inbound: all TCP except 4190, 4191 and the ignored ports goes to the proxy's 4143 (SO_ORIGINAL_DST
    keeps the original port). Outbound: all TCP except over lo, from the proxy itself (mark, standing in
    for uid 2102) and to the ignored ports goes to 127.0.0.1:4140.
    """
    inbound_skip = ", ".join(str(p) for p in INBOUND_SKIP_PORTS)
    outbound_skip = ", ".join(str(p) for p in OUTBOUND_SKIP_PORTS)
    return f"""table ip mtlslab {{
  chain proxy_init_inbound {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "lo" return
    tcp dport {{ {inbound_skip} }} return
    meta l4proto tcp redirect to :{PROXY_INBOUND_PORT}
  }}
  chain proxy_init_outbound {{
    type nat hook output priority -100; policy accept;
    oifname "lo" return
    meta mark {PROXY_MARK:#x} return
    tcp dport {{ {outbound_skip} }} return
    meta l4proto tcp redirect to :{PROXY_OUTBOUND_PORT}
  }}
}}
"""


def setup_network(lab: Lab) -> None:
    """Create the node namespaces with their bridges, route them to each other, wire each pod to its node."""
    prefix_len = SUBNET.prefixlen
    for index, (node_ns, node_ip) in enumerate(zip(NODE_NAMES, NODE_IPS)):
        bridge = f"{PREFIX}br{index}"
        run("ip", "netns", "add", node_ns)
        run("ip", "-n", node_ns, "link", "set", "lo", "up")
        run("ip", "-n", node_ns, "link", "add", bridge, "type", "bridge")
        run("ip", "-n", node_ns, "addr", "add", f"{node_ip}/{NODE_SUBNETS[index].prefixlen}", "dev", bridge)
        run("ip", "-n", node_ns, "link", "set", bridge, "up")
        run("ip", "netns", "exec", node_ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    _join_nodes()
    for index, pod in enumerate(lab.pods):
        veth = f"{PREFIX}v{index}"
        node_ns = NODE_NAMES[pod.node]
        run("ip", "netns", "add", pod.netns)
        run("ip", "-n", node_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.netns)
        run("ip", "-n", node_ns, "link", "set", veth, "master", f"{PREFIX}br{pod.node}")
        run("ip", "-n", node_ns, "link", "set", veth, "up")
        run("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/{prefix_len}", "dev", "eth0")
        run("ip", "-n", pod.netns, "link", "set", "eth0", "up")
        run("ip", "-n", pod.netns, "link", "set", "lo", "up")
        # Only the pod network goes via the node: nothing can leave the lab's namespaces.
        run("ip", "-n", pod.netns, "route", "add", str(PODS_SUPERNET), "via", pod.node_ip)
        if pod.meshed:
            proc = subprocess.run(["ip", "netns", "exec", pod.netns, "nft", "-f", "-"], input=nft_rules(lab),
                                  capture_output=True, text=True, timeout=30)
            if proc.returncode != 0:
                raise LabError(f"nft in {pod.netns} failed: {proc.stderr.strip()} (is nftables installed?)")


def _join_nodes() -> None:
    """The transit veth between the two node namespaces, and a route to the other node's pod subnet."""
    (first, second), (addr1, addr2) = NODE_NAMES, TRANSIT
    run("ip", "-n", first, "link", "add", f"{PREFIX}t0", "type", "veth", "peer", "name", f"{PREFIX}t1", "netns", second)
    for ns, link, addr in ((first, f"{PREFIX}t0", addr1), (second, f"{PREFIX}t1", addr2)):
        run("ip", "-n", ns, "addr", "add", addr, "dev", link)
        run("ip", "-n", ns, "link", "set", link, "up")
    run("ip", "-n", first, "route", "add", str(NODE_SUBNETS[1]), "via", addr2.split("/")[0])
    run("ip", "-n", second, "route", "add", str(NODE_SUBNETS[0]), "via", addr1.split("/")[0])


def service_rules(lab: Lab) -> str:
    """kube-proxy's part in nftables form: each ClusterIP:port DNATed to its pod in the node namespace."""
    rules = "\n".join(f"    ip daddr {ip} tcp dport {spec.port} dnat to {lab.pod(spec.target).ip}:{spec.target_port}"
                      for spec, ip in lab.services())
    return f"""table ip {PREFIX}services {{
  chain cluster_ips {{
    type nat hook prerouting priority dstnat; policy accept;
{rules}
  }}
}}
"""


def setup_services(lab: Lab) -> None:
    """ClusterIPs as nodes have them: pods route SERVICE_SUBNET to their node, which DNATs (kube-proxy runs
    on every node) and forwards to the pod, on its bridge or over the transit link.  A same-node reply is
    bridged straight back, and br_netfilter passes it through the node's conntrack, which rewrites its source
    back to the ClusterIP, as on a bridge-CNI node; a reply from the other node is routed through it."""
    rules = service_rules(lab)
    for index, node_ns in enumerate(NODE_NAMES):
        bridge = f"{PREFIX}br{index}"
        for key, value in (("net.ipv4.ip_forward", "1"), ("net.bridge.bridge-nf-call-iptables", "1"),
                           # No ICMP redirect "talk to the pod directly": the ClusterIP only works via the node.
                           ("net.ipv4.conf.all.send_redirects", "0"), (f"net.ipv4.conf.{bridge}.send_redirects", "0")):
            run("ip", "netns", "exec", node_ns, "sysctl", "-qw", f"{key}={value}")
        proc = subprocess.run(["ip", "netns", "exec", node_ns, "nft", "-f", "-"], input=rules,
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise LabError(f"nft in {node_ns} failed: {proc.stderr.strip()}")
    for pod in lab.pods:
        run("ip", "-n", pod.netns, "route", "add", str(SERVICE_SUBNET), "via", pod.node_ip)


# -- processes -----------------------------------------------------------------------------------------
def agent_command(netns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", netns, sys.executable, "-m", "analyzer.lab.agent", *args]


def agent_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(state: Path, name: str, command: list[str], stdout=None) -> subprocess.Popen:
    """Start a lab process in its own session, log to <state>/logs/<name>.log, record its PID."""
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / "pids").mkdir(parents=True, exist_ok=True)
    logfile = open(state / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(command, stdout=stdout or logfile, stderr=logfile, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=agent_env(), cwd=REPO_ROOT)
    logfile.close()
    (state / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def forget(state: Path, name: str) -> None:
    (state / "pids" / f"{name}.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _netns_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def terminate(pids: list[int]) -> list[int]:
    """SIGTERM each PID, wait up to KILL_GRACE_S, SIGKILL the rest; returns the PIDs signalled."""
    signalled = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline and any(_alive(p) for p in signalled):
        time.sleep(0.05)
    for pid in signalled:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in signalled:  # reap our own children so they do not linger as zombies
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    return signalled


def recorded_pids(state: Path) -> dict[str, int]:
    out = {}
    for path in sorted((state / "pids").glob("*.pid")) if (state / "pids").is_dir() else []:
        try:
            out[path.stem] = int(path.read_text().strip())
        except ValueError:
            continue
    return out


def netns_pids(netns: str) -> list[int]:
    proc = run("ip", "netns", "pids", netns, check=False)
    return [int(x) for x in proc.stdout.split() if x.isdigit()]


def teardown(state: Path | None) -> dict[str, list]:
    """Kill lab processes and delete lab namespaces/links. Safe to run any number of times."""
    lab_ns_inodes = set()
    namespaces = lab_namespaces()
    for ns in namespaces:
        try:
            lab_ns_inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
        except OSError:
            pass
    killed: list[int] = []
    if state is not None:
        recorded = recorded_pids(state)
        # Only kill a recorded PID that still runs our agent or tshark, or sits in a lab namespace:
        # a PID reused by an unrelated process after a reboot must survive.
        mine = []
        for pid in recorded.values():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            in_lab = False
            try:
                in_lab = os.stat(f"/proc/{pid}/ns/net").st_ino in lab_ns_inodes
            except OSError:
                pass
            if in_lab or b"analyzer.lab" in cmdline:
                mine.append(pid)
        killed += terminate(mine)
        for name in recorded:
            forget(state, name)
    for ns in namespaces:
        killed += terminate(netns_pids(ns))
    for ns in namespaces:
        run("ip", "netns", "del", ns, check=False)
    # Links in the root namespace: none are created, but a crash of an older layout could leave some.
    links = run("ip", "-o", "link", "show", check=False).stdout
    stray_links = []
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(PREFIX):
            run("ip", "link", "del", name, check=False)
            stray_links.append(name)
    return {"namespaces": namespaces, "killed": sorted(set(killed)), "links": stray_links}
