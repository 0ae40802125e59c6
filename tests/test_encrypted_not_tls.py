"""Rules both engines share, decided once in ``analysis``: encrypted protocols that are not TLS are
``unknown`` (never plaintext, never tls), and a payload the snaplen cut away names the snaplen.

Each case is a crafted capture run through the native engine and, when tshark is installed, the tshark
engine: the same verdict, evidence and application protocol from both.
"""

from __future__ import annotations

import shutil

import pytest

import pcapgen as g
from analyzer import analyze
from analyzer.analysis.signatures import ENCRYPTED_NOT_TLS, identify
from analyzer.analysis.verdict import CLIENT, ConnectionFacts, PayloadFacts, client_direction, flow_row

ENGINES = ["native", pytest.param("tshark", marks=[
    pytest.mark.tshark, pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")])]

SESSION_C, SESSION_S = bytes(range(1, 9)), bytes(range(11, 19))
# OpenVPN over TCP (RFC-less; openvpn ssl_pkt.h): 2-byte length, then opcode << 3 | key id.
OPENVPN_CLIENT_RESET = b"\x38" + SESSION_C + b"\x00" + b"\x00\x00\x00\x00"  # P_CONTROL_HARD_RESET_CLIENT_V2
OPENVPN_SERVER_RESET = b"\x40" + SESSION_S + b"\x01\x00\x00\x00\x00" + SESSION_C + b"\x00\x00\x00\x00"  # ..._SERVER_V2


def _framed(packet: bytes) -> bytes:
    return len(packet).to_bytes(2, "big") + packet


CASES = {
    "ssh": lambda: g.tcp_flow([("s", g.SSH_SERVER_BANNER), ("c", g.SSH_CLIENT_BANNER),
                               ("c", g.ssh_kexinit(1)), ("s", g.ssh_kexinit(2))],
                              server=g.Endpoint(g.SERVER.ip, 22)),
    "openvpn": lambda: g.tcp_flow([("c", _framed(OPENVPN_CLIENT_RESET)), ("s", _framed(OPENVPN_SERVER_RESET))],
                                  server=g.Endpoint(g.SERVER.ip, 1194)),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_encrypted_protocol_that_is_not_tls_is_unknown(tmp_path, case, engine):
    path = tmp_path / f"{case}.pcap"
    path.write_bytes(g.ether_pcap(CASES[case]()))
    (row,) = analyze(path, engine=engine).flow_rows
    assert (row["verdict"], row["evidence"], row["app_protocol"]) == ("unknown", "payload", case)
    assert row["reason"].endswith(f"encrypted by {case.upper()}, not TLS")


@pytest.mark.parametrize("engine", ENGINES)
def test_snaplen_that_cut_every_payload_byte_is_named(tmp_path, engine):
    path = tmp_path / "cut.pcap"
    snaplen = 14 + 20 + 20  # Ethernet, IPv4 and TCP headers without options: no payload byte survives
    path.write_bytes(g.ether_pcap(g.tcp_flow([("c", g.HTTP_REQUEST), ("s", g.HTTP_RESPONSE)]), snaplen=snaplen))
    (row,) = analyze(path, engine=engine).flow_rows
    assert (row["verdict"], row["evidence"]) == ("unknown", "none")
    assert row["reason"].startswith(f"no payload captured (snaplen {snaplen} cut 2 packets)")


def test_native_signatures_name_the_openvpn_reset_only_from_the_client():
    assert identify(_framed(OPENVPN_CLIENT_RESET), "orig") == ("openvpn", "OpenVPN hard reset from the client")
    assert identify(_framed(OPENVPN_CLIENT_RESET), "resp") is None
    assert identify(b"\x00\x10\x38" + b"\x00" * 13, "orig") == ("openvpn", "OpenVPN hard reset from the client")
    assert identify(b"\x00\x10\x38" + b"\x01" * 13, "orig") is None  # a non-empty ACK array: not a first reset


@pytest.mark.parametrize("name", sorted(ENCRYPTED_NOT_TLS))
def test_the_verdict_rule_for_every_encrypted_protocol(name):
    """Wireshark names skype and kerberos-gss-wrapped too (the native signatures do not): the one rule."""
    conn = ConnectionFacts("x.pcap", 0, ("10.0.0.1", "10.0.0.2"), (b"\n\0\0\1", b"\n\0\0\2"), (40000, 5000),
                           0.0, 1.0, (3, 3), (100, 100), 0, None, None, (False, False), (False, False), False, 0, 0)
    facts = PayloadFacts(200, protocol=name, protocol_detail=f"{name} detail", protocol_side=CLIENT)
    row = flow_row(conn, client_direction(conn, frozenset()), facts, frozenset())
    assert (row["verdict"], row["evidence"], row["app_protocol"]) == ("unknown", "payload", name)
    assert row["reason"] == f"{name} detail: encrypted by {name.upper()}, not TLS"
