"""The single source of truth for output columns: name, pandas dtype, meaning.

Every table the analyzer emits (CSV, JSON, markdown, DataFrame) takes its columns, their order and
their types from here, and a test checks that real output, the docs and this module agree.  Standard
library only: pandas reads these tuples when it builds frames (``report/frames.py``).
"""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    dtype: str  # pandas dtype: nullable ints, "string", "boolean", "category", "datetime64[ns, UTC]"
    description: str


VERDICTS = ("tls", "plaintext", "unknown")
EVIDENCE = ("handshake", "records", "payload", "none")
HANDSHAKES = ("completed", "failed", "incomplete", "not-seen")
MTLS = ("proven", "inferred", "none", "unknown")
PAIR_STATUSES = ("all-tls", "plaintext-present", "mixed", "unknown-only")
CLIENT_BASES = ("syn", "synack", "hello", "port", "first-packet")
CATEGORIES = {"client_basis": CLIENT_BASES, "verdict": VERDICTS, "evidence": EVIDENCE, "handshake": HANDSHAKES, "mtls": MTLS, "status": PAIR_STATUSES}

FLOW_COLUMNS: tuple[Column, ...] = (
    Column("capture", "string", "capture file the flow was read from"),
    Column("flow_id", "Int64", "flow number within the analysis, in order of first packet"),
    Column("client_ip", "string", "client address (SYN sender; see client_basis)"),
    Column("client_port", "UInt16", "client TCP port"),
    Column("server_ip", "string", "server address"),
    Column("server_port", "UInt16", "server TCP port"),
    Column("client_basis", "category", "how the client was chosen: syn, synack, hello (ClientHello sender), port, first-packet"),
    Column("ip_version", "UInt8", "4 or 6"),
    Column("first_ts", "datetime64[ns, UTC]", "time of the first packet"),
    Column("last_ts", "datetime64[ns, UTC]", "time of the last packet"),
    Column("duration_s", "Float64", "last_ts - first_ts in seconds"),
    Column("packets_c2s", "Int64", "packets client -> server"),
    Column("packets_s2c", "Int64", "packets server -> client"),
    Column("bytes_c2s", "Int64", "TCP payload bytes client -> server on the wire (retransmissions included)"),
    Column("bytes_s2c", "Int64", "TCP payload bytes server -> client on the wire (retransmissions included)"),
    Column("syn_seen", "boolean", "a SYN or SYN-ACK was captured"),
    Column("fin_seen", "boolean", "a FIN was captured"),
    Column("rst_seen", "boolean", "a RST was captured"),
    Column("midstream", "boolean", "no SYN/SYN-ACK: the capture joined an open connection"),
    Column("gaps", "Int64", "holes: in the inspected first bytes (lost segments, snaplen cuts), then forward sequence jumps (lost or reordered segments)"),
    Column("truncated_packets", "Int64", "packets whose payload the snaplen cut"),
    Column("localhost", "boolean", "a localhost hop (127/8, ::1, loopback interface, same IP both ends); excluded by default"),
    Column("localhost_reason", "string", "why the flow counts as localhost"),
    Column("verdict", "category", "tls | plaintext | unknown, from bytes on the wire"),
    Column("evidence", "category", "handshake | records | payload | none: what the verdict rests on"),
    Column("reason", "string", "one-line human explanation of the verdict"),
    Column("app_protocol", "string", "tls, http/1.1, h2c, ssh, smtp+starttls, ... ('unknown' for unrecognised cleartext)"),
    Column("sni", "string", "server_name from the ClientHello"),
    Column("identity", "string", "Linkerd identity from the SNI, shortened to sa.ns as linkerd viz edges prints it"),
    Column("alpn", "string", "ALPN protocols offered by the client, comma-joined"),
    Column("alpn_selected", "string", "ALPN chosen by the server (visible before TLS 1.3 only)"),
    Column("tls_version", "string", "negotiated version from the ServerHello (supported_versions if present)"),
    Column("cipher_suite", "string", "cipher suite chosen by the server"),
    Column("handshake", "category", "completed | failed | incomplete | not-seen"),
    Column("client_hello", "boolean", "a ClientHello was parsed (False for ServerHello-only, mid-stream and cut handshakes)"),
    Column("handshake_detail", "string", "which side ended a failed or incomplete handshake, and how"),
    Column("mtls", "category", "proven (client Certificate seen, TLS <= 1.2) | inferred (TLS 1.3 with mesh identity) | none | unknown"),
    Column("mesh", "boolean", "looks like Linkerd proxy-to-proxy mTLS (identity SNI or transport.l5d.io/v1 ALPN)"),
    Column("port_hint", "string", "what the server port suggests (Linkerd ports, --decode-as); never decides alone"),
    Column("hint_conflict", "boolean", "the port expects TLS but the payload is plaintext"),
    Column("plaintext_prefix_bytes", "Int64", "cleartext bytes before the ClientHello (STARTTLS, CONNECT, SOCKS)"),
    Column("tls_records", "Int64", "complete TLS records parsed in the inspected first bytes, both directions"),
    Column("app_data_records", "Int64", "application-data (type 23) records among them"),
    Column("alert", "string", "first TLS alert seen: level, description, sender"),
    Column("isn_c2s", "Int64", "initial sequence number of the client's SYN (NA when no SYN was captured)"),
    Column("isn_s2c", "Int64", "initial sequence number of the server's SYN-ACK (NA when none was captured)"),
    Column("captures", "string", "capture files that saw this connection, comma-joined (several: joined vantage points)"),
    Column("vantages", "Int64", "how many captures saw this connection"),
    Column("vantage_conflict", "boolean", "the captures contradict each other (tls in one, plaintext in another): verdict unknown"),
    Column("service_ip", "string", "Service ClusterIP the client addressed before DNAT, when one capture saw it ('' otherwise)"),
    Column("service_port", "UInt16", "Service port the client addressed before DNAT (NA when not seen)"),
)

PAIR_COLUMNS: tuple[Column, ...] = (
    Column("client_ip", "string", "client address"),
    Column("server_ip", "string", "server address"),
    Column("flows", "Int64", "TCP flows between them"),
    Column("tls", "Int64", "flows with verdict tls"),
    Column("plaintext", "Int64", "flows with verdict plaintext"),
    Column("unknown", "Int64", "flows with verdict unknown"),
    Column("bytes", "Int64", "TCP payload bytes both ways"),
    Column("bytes_tls", "Int64", "payload bytes of tls flows"),
    Column("bytes_plaintext", "Int64", "payload bytes of plaintext flows"),
    Column("server_ports", "string", "server ports seen, comma-joined"),
    Column("tls_versions", "string", "negotiated TLS versions seen, comma-joined"),
    Column("snis", "string", "SNIs seen, comma-joined"),
    Column("evidence", "string", "evidence kinds behind the verdicts, comma-joined"),
    Column("status", "category", "all-tls | plaintext-present | mixed (tls and unknown) | unknown-only"),
    Column("first_ts", "datetime64[ns, UTC]", "first packet of any flow"),
    Column("last_ts", "datetime64[ns, UTC]", "last packet of any flow"),
)

FLOW_NAMES = tuple(c.name for c in FLOW_COLUMNS)
PAIR_NAMES = tuple(c.name for c in PAIR_COLUMNS)

# A flow row before any evidence: every column at its dtype's empty value, the closed sets at their
# "nothing seen" member.  Engines start every row from this (``analysis.verdict``).
EMPTY_BY_DTYPE = {"string": "", "category": "", "boolean": False, "UInt8": 0, "UInt16": 0, "Int64": 0,
                  "Float64": 0.0, "datetime64[ns, UTC]": 0.0}
FLOW_START = {"verdict": "unknown", "evidence": "none", "handshake": "not-seen", "mtls": "none"}
_EMPTY_FLOW = {c.name: FLOW_START.get(c.name, EMPTY_BY_DTYPE[c.dtype]) for c in FLOW_COLUMNS}


def empty_flow_row() -> dict:
    """A fresh flows-table row with every column of ``FLOW_COLUMNS``, in order."""
    return dict(_EMPTY_FLOW)
TIME_COLUMNS = frozenset(c.name for c in FLOW_COLUMNS + PAIR_COLUMNS if c.dtype.startswith("datetime"))

# -- edges: flows + pods -> one row per (source, destination) pod / workload / namespace ------
# Why `status` and the `*_kind` columns are "string", not "category": CATEGORIES is keyed by column name
# and "status" already means the pairs view's PAIR_STATUSES; kinds follow ownerReferences (open set).
EDGE_STATUSES = ("secured", "plaintext-expected", "PLAINTEXT-UNEXPECTED", "mixed", "unverified")
PEER_KINDS = ("pod", "node", "external", "ambiguous", "namespace", "service")  # + owner kinds: deployment, statefulset, ...

EDGE_COLUMNS: tuple[Column, ...] = (
    Column("src", "string", "source: pod, workload (--resource deployment) or namespace; node name; IP if external/ambiguous"),
    Column("dst", "string", "destination, named like src"),
    Column("src_ns", "string", "source namespace ('' for node, external and ambiguous peers)"),
    Column("dst_ns", "string", "destination namespace"),
    Column("src_kind", "string", "pod | deployment | statefulset | daemonset | replicaset | job | namespace | node | external | ambiguous"),
    Column("dst_kind", "string", "like src_kind, or service: a Service reached by its ClusterIP (dst is the Service)"),
    Column("client", "string", "client identity sa.ns computed from the source pod's service account (not observed: see mtls)"),
    Column("server", "string", "server identities observed in the SNI, shortened to sa.ns when exactly the destination's identity (other SNIs in full), comma-joined"),
    Column("expected_server", "string", "identity the destination pod must present (sa.ns; in full when identity_mismatch), from its spec"),
    Column("identity_mismatch", "boolean", "an observed SNI is not the destination's expected identity (stale SNI to a reused IP, app TLS)"),
    Column("mtls", "category", "proven (TLS 1.2 client Certificate seen) | inferred (TLS 1.3: client cert encrypted) | none | unknown"),
    Column("secured", "boolean", "status is secured (linkerd viz edges' SECURED)"),
    Column("status", "string", "secured | plaintext-expected | PLAINTEXT-UNEXPECTED | mixed | unverified"),
    Column("msg", "string", "why, in Linkerd's reason words where one fits (no_tls_from_remote, port_skipped, ...) with the ports"),
    Column("flows", "Int64", "TCP flows between the two ends (closed connections count)"),
    Column("tls", "Int64", "flows with verdict tls"),
    Column("plaintext", "Int64", "flows with verdict plaintext"),
    Column("unknown", "Int64", "flows with verdict unknown"),
    Column("unexpected", "Int64", "plaintext flows the mesh should have encrypted"),
    Column("unverified", "Int64", "flows proving neither mesh mTLS nor expected plaintext (no evidence, wrong SNI, ambiguous IP)"),
    Column("bytes", "Int64", "TCP payload bytes both ways"),
    Column("bytes_plaintext", "Int64", "payload bytes of plaintext flows"),
    Column("tls_versions", "string", "negotiated TLS versions seen, comma-joined"),
    Column("evidence", "string", "evidence kinds behind the verdicts, comma-joined"),
    Column("ports", "string", "destination (server) ports, comma-joined"),
    Column("first_ts", "datetime64[ns, UTC]", "first packet of any flow"),
    Column("last_ts", "datetime64[ns, UTC]", "last packet of any flow"),
    Column("src_ips", "string", "source addresses, comma-joined"),
    Column("dst_ips", "string", "destination addresses, comma-joined"),
    Column("src_meshed", "boolean", "every source pod is meshed (NA: mixed, ambiguous or unknown)"),
    Column("dst_meshed", "boolean", "every destination pod is meshed (NA: mixed, ambiguous or unknown)"),
    Column("notes", "string", "attribution notes: ambiguous or reused IPs, pod list without specs, a pod listed twice"),
    Column("unexpected_ports", "string", "server ports of the flows with unexpected plaintext, comma-joined"),
    Column("unexpected_protocols", "string", "cleartext protocols those flows carry (h2c, http/1.1, ...; app_protocol, "
                                             "unrecognised ones left out), comma-joined"),
    Column("plaintext_ports", "string", "server ports of the plaintext flows, comma-joined"),
    Column("unverified_ports", "string", "server ports of the unverified flows, comma-joined"),
)
EDGE_NAMES = tuple(c.name for c in EDGE_COLUMNS)
EXPORT_FORMATS = ("parquet", "jsonl")  # file formats of a view besides the text ones (report.export)
