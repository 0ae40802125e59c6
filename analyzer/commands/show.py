"""``mtls-analyzer show CAPTURE --flow ID [--export out.pcap]``: one flow's drill-down for an auditor."""

from __future__ import annotations

from pathlib import Path

import click

from .common import InputError, say

from ..errors import AnalyzerError
from .common import wide_option
from ..report.render import render, table_width


@click.command(short_help="Show one flow: its packets, its handshake, its verdict.")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--flow", "flow_id", type=click.IntRange(min=0), required=True,
              help="The flow's id (FLOW_ID of `analyze --view flows --include-localhost`).")
@click.option("--export", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the flow's packets to this pcap (pcapng if the name ends in .pcapng).")
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,tls", help="As for analyze.")
@click.option("--max-packets", type=click.IntRange(min=1, max=100_000), default=200, show_default=True,
              help="Packets listed and dissected at most.")
@click.option("--all-layers", is_flag=True, help="Dissect every layer (link, IP, TCP too), not only the payload's.")
@wide_option
def show(capture, flow_id, export, decode_as, max_packets, all_layers, wide):
    """One flow: its packets, Wireshark's full dissection of its handshake (via pyshark), and both engines'
    evidence side by side."""
    from ..engines.drilldown import drilldown, export_flow, side_by_side

    try:
        dd = drilldown(str(capture), flow_id, decode_as, max_packets, all_layers)
        exported = export_flow(str(capture), dd.native, str(export)) if export else None
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    r = dd.native
    width = table_width(wide)
    say(f"flow {flow_id} of {capture.name}: {r['client_ip']}:{r['client_port']} -> {r['server_ip']}:"
        f"{r['server_port']}  {r['verdict']}/{r['evidence']}  {r['reason']}")
    say(f"display filter: {dd.display_filter}")
    click.echo("")
    click.echo("== evidence, native engine vs Wireshark (tshark engine)")
    click.echo(render(side_by_side(dd.native, dd.tshark), ("column", "native", "tshark", "same"), "table", "evidence",
                      width), nl=False)
    say(f"native reason: {dd.native['reason']}")
    say(f"tshark reason: {dd.tshark['reason'] if dd.tshark else '(tshark unavailable)'}")
    click.echo("")
    more = f" (first {max_packets})" if dd.truncated else ""
    click.echo(f"== packets{more}")
    click.echo(render(dd.packets, ("number", "time_s", "direction", "flags", "tcp_len", "protocols"), "table", "packets",
                      width),
               nl=False)
    for number, text in dd.dissections:
        click.echo("")
        click.echo(f"== frame {number}: Wireshark dissection")
        for line in text.rstrip().splitlines():
            say(line.expandtabs(4))  # Wireshark indents with tabs
    if export:
        click.echo("")
        say(f"exported {exported} packets to {export}")
