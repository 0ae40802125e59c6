"""``mtls-analyzer lab up|capture|down|status``: a thin click layer over :mod:`analyzer.lab.control`.

Every command needs root (network namespaces, nftables, capturing): without it, one error line and exit
code 2. Library errors (:class:`~analyzer.lab.netns.LabError`) become ``click.ClickException`` (exit 1),
except a request that cannot be met (the lab is not up, no such pod: ``LabRequestError``), which exits 2.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import click

from analyzer.lab import control
from analyzer.lab.netns import LabError, LabRequestError
from analyzer.lab.topology import MODES, SCENARIOS

ROOT_MESSAGE = "Error: `lab` needs root (it creates network namespaces and nftables rules and runs tshark)."


def lab_command(func):
    """Shared --state option, the root check and LabError -> ClickException."""

    @click.option("--state", type=click.Path(file_okay=False, path_type=Path), envvar="MTLSLAB_STATE",
                  default=control.DEFAULT_STATE, show_default=True, help="Lab state directory.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if os.geteuid() != 0:
            click.echo(ROOT_MESSAGE, err=True)
            raise SystemExit(2)
        try:
            return func(*args, **kwargs)
        except LabRequestError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = 2
            raise error from exc
        except LabError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group(name="lab", short_help="A mesh lab on this machine: pods in network namespaces with mTLS sidecars.")
def lab() -> None:
    """A mesh lab on this machine: pods in network namespaces, Linkerd-like mTLS sidecars, real captures."""


@lab.command(short_help="Start the lab: namespaces, certificates, pod list, proxies and apps.")
@click.option("--mode", type=click.Choice(MODES), default="transparent", show_default=True,
              help="transparent: mTLS on the app port, no ALPN. transport-header: mTLS to 4143 with ALPN "
                   "transport.l5d.io/v1.")
@click.option("--lifetime", type=float, default=3600.0, show_default=True,
              help="Seconds after which the lab's daemons exit by themselves.")
@lab_command
def up(state: Path, mode: str, lifetime: float) -> None:
    """Create the namespaces, certificates, pods.json and expected edges; start proxies and apps."""
    started = time.monotonic()
    result = control.up(state, mode, lifetime)
    click.echo(f"lab up in {time.monotonic() - started:.1f} s, mode {mode}, state {state}")
    for pod in result.pods:
        click.echo(f"  {pod.namespace + '/' + pod.name:52} {pod.ip:12} {'meshed' if pod.meshed else 'unmeshed'}")


@lab.command(short_help="Capture with tshark -i any in a pod's (or the node's) namespace while traffic flows.")
@click.option("--pod", multiple=True, help="Capture inside this pod's namespace (key, deployment or pod name). "
                                           "Repeatable, and with --node: all at once, one file each.")
@click.option("--node", is_flag=True, help="Capture on the node's bridge (also with --pod).")
@click.option("--node-any", is_flag=True,
              help="Capture node namespaces with -i any (veths, bridge, transit link: both sides of a Service's "
                   "DNAT for a client on that node; Linux cooked v2) instead of their bridge. Implies --node; "
                   "--pod node2 is the second node.")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="How long traffic runs.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="pcapng to write; <name>.pods.json and <name>.expected-edges.csv go beside it. Several "
                   "vantage points write <name>.pod-<pod>.pcapng and <name>.node.pcapng instead.")
@click.option("--snaplen", "-s", type=click.IntRange(min=64), help="tshark -s: bytes kept per packet.")
@click.option("--sll2", is_flag=True, help="Force Linux cooked v2 headers (tshark -y LINUX_SLL2).")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="steady", show_default=True,
              help="midconn: long-lived connections are opened before the capture starts.")
@click.option("--max-rounds", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Upper bound on each traffic driver's rounds.")
@lab_command
def capture(state: Path, pod: tuple[str, ...], node: bool, node_any: bool, seconds: float, output: Path,
            snaplen: int | None, sll2: bool, scenario: str, max_rounds: int) -> None:
    """Run tshark -i any in a pod's netns (as the linkerd-debug sidecar does) while traffic flows."""
    points = [*pod, *(["node"] if node or node_any else [])]
    if not points:
        raise click.UsageError("give --pod POD (repeatable) and/or --node")
    if not 1 <= seconds <= 300:
        raise click.BadParameter("must be between 1 and 300", param_hint="--seconds")
    started = time.monotonic()
    result = control.capture(state, output, points[0], seconds, snaplen, sll2, scenario, max_rounds,
                             also=tuple(points[1:]), node_any=node_any)
    click.echo(f"captured {result.size_bytes} bytes in {time.monotonic() - started:.1f} s ({seconds:g} s of traffic, "
               f"then {control.TAIL_S:g} s for the last closes): {' '.join(result.command)}")
    for summary in result.drivers:
        click.echo(f"  driver {json.dumps(summary)}")
    for path in result.files:
        click.echo(f"  wrote {path}")


@lab.command(short_help="Stop the lab's processes and delete its namespaces and links.")
@lab_command
def down(state: Path) -> None:
    """Kill the lab's processes and delete its namespaces and links (idempotent)."""
    result = control.down(state)
    click.echo(f"lab down: {len(result['namespaces'])} namespaces deleted, {len(result['killed'])} processes "
               f"stopped, {len(result['links'])} stray links removed")


@lab.command(short_help="Show the lab's namespaces, pods, IPs and processes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@lab_command
def status(state: Path, as_json: bool) -> None:
    """Show the lab's namespaces, pods and IPs, and the processes running in them."""
    info = control.status(state)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"state {info['state']}  mode {info['mode'] or '-'}  node {info['node_ip'] or '-'}")
    click.echo(f"namespaces ({len(info['namespaces'])}): {' '.join(info['namespaces']) or '-'}")
    for pod in info["pods"]:
        click.echo(f"  {pod['namespace'] + '/' + pod['name']:52} {pod['ip']:12} {pod['identity'] or 'unmeshed'}")
    click.echo(f"processes ({len(info['processes'])}):")
    for proc in info["processes"]:
        click.echo(f"  {proc['netns']:24} {proc['pid']:>7}  {proc['cmdline'][:100]}")
