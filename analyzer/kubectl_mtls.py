"""``kubectl mtls``: capture in a pod's ``linkerd-debug`` sidecar from a laptop, then print the edges.

A kubectl plugin: the console script ``kubectl-mtls`` on ``PATH`` makes ``kubectl mtls ...`` work.
Nothing is installed in the pod: ``kubectl exec -c linkerd-debug -- tshark -i any -w -`` streams the
capture back, it is saved (with the pod list beside it) under ``captures/``, and analysed here with the
same library as ``mtls-analyzer analyze --view edges``.  A thin click layer: the work is in
``analyzer.kube`` (pods, kubectl) and ``analyzer.report.edges``.

Exit codes as ``mtls-analyzer``: 0 done; 2 bad input, kubectl missing or failing, no debug sidecar;
3 an audit gate (``--fail-on``) holds; 130 interrupted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from . import __version__
from .api import analyze as run_analysis
from .commands.common import InputError, emit, exit_on_gates, output_options, wide_option, write_report_files
from .commands.common import TRUST_UNKNOWN_CLIENTS_HELP, warn
from .errors import AnalyzerError, BackendUnavailable
from .kube import kubectl
from .audit import DEFAULT_PARALLEL
from .kube.debug import VIA_CHOICES
from .kube.podlist import parse_pods_json
from .kube.pods import DEBUG_ANNOTATION, DEBUG_CONTAINER, Pod, merge_pod_lists, select_pods
from .report.edges import GATES, RESOURCES, edge_rows, gate_failures, headline, summary
from .report.render import FORMATS, for_terminal, render, table_width, wide_output
from .report.schema import EDGE_NAMES


def debug_sidecar_hint(pod: Pod, container: str) -> str:
    """How to get the debug container into ``pod`` (the proxy injector adds it at pod creation only)."""
    annotation = f'{DEBUG_ANNOTATION}: "true"'
    if pod.owner_kind in ("deployment", "statefulset", "daemonset"):
        patch = '{"spec":{"template":{"metadata":{"annotations":{"' + DEBUG_ANNOTATION + '":"true"}}}}}'
        how = (f"add the annotation {annotation} to the pod template; the pods are re-created:\n"
               f"  kubectl -n {pod.namespace} patch {pod.owner_kind} {pod.owner_name} -p '{patch}'")
    else:
        how = f"re-create the pod with the annotation {annotation} (the proxy injector adds the container at creation)"
    return f"pod {pod.ref} has no {container} container. To enable Linkerd's debug sidecar, {how}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubectl-mtls")
def cli() -> None:
    """Prove from packets whether a pod's traffic is mutual TLS, from your laptop (a kubectl plugin)."""


@cli.command(short_help="Capture in a pod with its linkerd-debug sidecar and print its edges.")
@click.argument("target")
@click.option("-n", "--namespace", metavar="NS", help="Namespace of TARGET (default: the context's).")
@click.option("--context", metavar="CTX", help="kubeconfig context.")
@click.option("--seconds", type=click.IntRange(1, 3600), default=10, show_default=True, help="Capture duration.")
@click.option("--all-pods", is_flag=True, help="Capture in every running pod of TARGET, not only the first.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("captures"),
              show_default=True, help="Where the pcapng and its .pods.json (pods, services, endpointslices) are saved.")
@click.option("--container", default=DEBUG_CONTAINER, show_default=True, help="Container that has tshark.")
@click.option("--interface", default="any", show_default=True, help="tshark -i inside the pod.")
@click.option("--snaplen", type=click.IntRange(min=64), help="tshark -s: bytes kept per packet.")
@click.option("--resource", type=click.Choice(RESOURCES), default="pod", show_default=True,
              help="Edges per pod, per owning workload or per namespace.")
@click.option("--trust-unknown-clients", is_flag=True, help=TRUST_UNKNOWN_CLIENTS_HELP)
@click.option("--fail-on", "fail_on", multiple=True, type=click.Choice(GATES),
              help="Exit 3 (after the table) if any edge has unexpected plaintext / any plaintext / unverified flows.")
@output_options
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary lines on stderr.")
def capture(target, namespace, context, seconds, all_pods, output_dir, container, interface, snaplen, resource,
            trust_unknown_clients, fail_on, fmt, output, wide, quiet):
    """Capture TARGET (deploy/NAME, sts/NAME, ds/NAME, pod/NAME or NAME) and print its edges.

    Runs `kubectl exec POD -c linkerd-debug -- tshark -i any -w -` for --seconds, saves
    OUTPUT_DIR/POD-TIME.pcapng and POD-TIME.pods.json (pods, services and endpointslices, listed before
    and after the capture: flows to a ClusterIP are the Service's), then prints the edges table as
    `mtls-analyzer analyze --view edges` does.
    """
    def say(text: str) -> None:
        if not quiet:
            warn(text)

    output, width = wide_output(output, wide)

    try:
        before_text = kubectl.get_pods_text(context, all_namespaces=True, kinds=kubectl.AUDIT_KINDS)
        before = parse_pods_json(before_text, f"kubectl get {kubectl.AUDIT_KINDS} -A -o json")
        ns = namespace or kubectl.current_namespace(context)
        pods = select_pods(before, ns, target)
        pods = pods if all_pods else pods[:1]
        for pod in pods:
            if not pod.has_container(container):
                raise InputError(debug_sidecar_hint(pod, container))
        output_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        runs = []
        for pod in pods:
            path = output_dir / f"{pod.name}-{stamp}.pcapng"
            argv = kubectl.exec_argv(pod.name, pod.namespace, container,
                                     kubectl.tshark_command(seconds, interface, snaplen), context)
            say(f"{pod.ref}: capturing {seconds} s with `kubectl exec -c {container} -- tshark -i {interface}` -> {path}")
            runs.append(kubectl.RemoteCapture(argv, path, pod.ref, None if quiet else _relay))
        problems = []
        try:
            for run in runs:
                try:
                    run.wait(seconds + kubectl.STOP_GRACE_S)
                except BackendUnavailable as exc:
                    problems.append(str(exc))
        except KeyboardInterrupt:  # each file keeps what was streamed, closed, before "Interrupted." and 130
            for run in runs:
                run.stop()
            for run in runs:
                try:
                    run.wait(kubectl.STOP_GRACE_S)
                except BackendUnavailable:
                    pass  # nothing usable came back from that pod: its (empty) file says so
            raise
        if problems:
            hint = ""
            if any(container in p and ("not found" in p or "not valid" in p) for p in problems):
                hint = " - " + debug_sidecar_hint(pods[0], container)
            raise InputError("; ".join(problems) + hint)
        after_text = kubectl.get_pods_text(context, all_namespaces=True, kinds=kubectl.AUDIT_KINDS)
        merged = merge_pod_lists(before_text, after_text)
        paths = [run.path for run in runs]
        for path in paths:
            path.with_name(path.name.removesuffix(".pcapng") + ".pods.json").write_text(merged)
            say(f"saved {path} ({path.stat().st_size} bytes) and its .pods.json")
        index = parse_pods_json(merged, "pod and service lists before and after the capture")
        report = run_analysis([str(p) for p in paths], pods=index)
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    edges = edge_rows(report.flow_rows, index, resource, trust_unknown_clients=trust_unknown_clients)
    say(headline(edges))
    emit(render(edges, EDGE_NAMES, fmt, "edges", width), output)
    say(report.summary())
    say(summary(edges))
    exit_on_gates(edges, fail_on)


@cli.command(short_help="Capture every pod of a namespace or cluster at once, without restarts; print the edges.")
@click.option("-n", "--namespace", metavar="NS", help="Namespace to audit (default: the context's).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Audit every namespace.")
@click.option("-l", "--selector", metavar="SELECTOR", help="Only pods matching this label selector (kubectl -l).")
@click.option("--context", metavar="CTX", help="kubeconfig context.")
@click.option("--via", type=click.Choice(VIA_CHOICES), default="auto", show_default=True,
              help="How to capture: the linkerd-debug sidecar, an ephemeral debug container, the node (one "
                   "capture per node running selected pods), or auto (the sidecar where present, else ephemeral).")
@click.option("--debug-image", metavar="IMAGE",
              help="Image of ephemeral and node debug containers (needs tshark; default: Linkerd's debug image "
                   "at the pod's linkerd.io/proxy-version).")
@click.option("--seconds", type=click.IntRange(1, 3600), default=10, show_default=True, help="Capture duration.")
@click.option("--parallel", type=click.IntRange(1, 256), default=DEFAULT_PARALLEL, show_default=True,
              help="Captures running at once.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where captures, pod lists and manifest.json go (default: captures/audit-<UTC time>).")
@click.option("-o", "--output", "html_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the HTML audit report (as `mtls-analyzer report`) to PATH; -o wide is --wide.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the audit report as JSON (docs/report.schema.json) to PATH.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Format of the edges table on standard output.")
@click.option("--resource", type=click.Choice(RESOURCES), default="pod", show_default=True,
              help="Edges per pod, per owning workload or per namespace.")
@click.option("--fail-on", "fail_on", multiple=True, type=click.Choice(GATES),
              help="Exit 3 (after the table) if any edge has unexpected plaintext / any plaintext / unverified flows.")
@click.option("--analyze-in-pod", is_flag=True,
              help="Send the analyzer (.pyz) into each debug container and classify there: only flow rows come "
                   "back, not packets (falls back to packets where the image has no python3).")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary lines on stderr (failures still are).")
@wide_option
def audit(namespace, all_namespaces, selector, context, via, debug_image, seconds, parallel, output_dir, html_path,
          json_path, fmt, resource, fail_on, analyze_in_pod, quiet, wide):
    """Capture every running pod selected (or the nodes that run them) at the same time, without restarting
    anything, then analyse all captures together and print one edges table.

    Each capture streams to OUTPUT_DIR/<ns>/<pod>-<UTC time>.pcapng (OUTPUT_DIR/nodes/<node>-... with --via
    node); OUTPUT_DIR/manifest.json lists every target with its way in, times, bytes, packets, exit status
    and error, beside the pod and service lists taken before and after. A target that cannot be captured is
    listed with the reason and the fix; the others go on. Ctrl-C stops every capture, keeps what was
    captured, and still reports.

    Exit 0; 3 when a --fail-on gate holds; 2 when nothing could be captured or on bad input; 130 when
    interrupted (after the report of what was captured).
    """
    from . import audit as sweep

    html_path, width = wide_output(html_path, wide)
    width = table_width(width is None)  # the table goes to standard output, even with -o report.html

    progress = _progress_line if sys.stderr.isatty() and not quiet else None
    try:
        result = sweep.run_audit(sweep.Request(
            namespace=None if all_namespaces else namespace, all_namespaces=all_namespaces, selector=selector,
            context=context, via=via, debug_image=debug_image, seconds=seconds, parallel=parallel,
            output_dir=output_dir, analyze_in_pod=analyze_in_pod, command=["kubectl-mtls", *sys.argv[1:]]),
            progress, None if quiet else _say)
        if progress is not None:
            click.echo("\r\033[K", nl=False, err=True)
        for entry in result.manifest.captures:
            if entry.error:
                click.echo(f"{entry.target}: not captured: {entry.error}", err=True)
        if not result.captured:
            raise InputError(f"nothing was captured ({len(result.manifest.captures)} targets); "
                             f"see {result.output_dir / 'manifest.json'}")
        report = result.analyse()
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    edges = edge_rows(report.flow_rows, result.pods, resource)
    if not quiet:
        warn(headline(edges))
    emit(render(edges, EDGE_NAMES, fmt, "edges", width), None)
    if html_path is not None or json_path is not None:
        _write_audit_report(report, result, resource, fail_on, html_path, json_path)
    for note in result.notes:
        _say(note)
    if not quiet:
        click.echo(report.summary(), err=True)
        click.echo(summary(edges), err=True)
        click.echo(f"captures, pod lists and manifest: {result.output_dir}", err=True)
    if result.manifest.interrupted:  # the report of what was captured, its gate lines, then "Interrupted." and 130
        for line in gate_failures(edges, fail_on):
            warn(line)
        raise KeyboardInterrupt
    exit_on_gates(edges, fail_on)


def _write_audit_report(report, result, resource, fail_on, html_path, json_path) -> None:
    from .report.audit import build_audit

    doc = build_audit(report, result.paths, result.output_dir / "pods.json", resource, fail_on, "native", (),
                      command=["kubectl-mtls", *sys.argv[1:]], streamed=True)
    write_report_files(doc, html_path, json_path)


def _say(text: str) -> None:
    click.echo(for_terminal(text, sys.stderr), err=True)


def _progress_line(text: str) -> None:
    click.echo("\r\033[K" + text, nl=False, err=True)


def _relay(label: str, line: str) -> None:
    warn(f"{label}: {line}")


def main() -> None:
    from .cli import run_group

    run_group(cli)


if __name__ == "__main__":
    main()
