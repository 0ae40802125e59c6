"""The lab's mTLS is really mutual and really TLS 1.3: the proxy's own TLS contexts, driven in memory.

The live equivalent (real sockets between namespaces) is in ``test_lab_e2e.py``.
"""

from __future__ import annotations

import ssl

import pytest

from analyzer.lab.pki import Authority
from analyzer.lab.proxy import client_context, server_context
from analyzer.lab.topology import TRANSPORT_ALPN, identity

SERVER_ID = identity("voting", "emojivoto")
CLIENT_ID = identity("web", "emojivoto")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    authority = Authority(directory)
    other = Authority(tmp_path_factory.mktemp("other-anchor"))
    return {
        "anchor": authority.anchor_path,
        "server": authority.issue("voting", SERVER_ID),
        "client": authority.issue("web", CLIENT_ID),
        "stranger": other.issue("web", CLIENT_ID),  # right name, wrong trust anchor
    }


def exchange(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, sni: str):
    """Handshake + one client->server message through memory BIOs; returns (server, client, error)."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    received = b""
    for _ in range(20):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return server, client, exc
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    try:
        client.write(b"ping")
        s_in.write(c_out.read())
        received = server.read(4)
        c_in.write(s_out.read())
        client.read(1)  # a TLS 1.3 client learns of a rejected certificate only now
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError as exc:
        return server, client, exc
    assert received == b"ping"
    return server, client, None


def test_mutual_tls13_with_identities(pki):
    server, client, error = exchange(server_context(pki["server"], pki["anchor"]),
                                     client_context(pki["client"], pki["anchor"]), SERVER_ID)
    assert error is None
    assert server.version() == client.version() == "TLSv1.3"
    assert dict(x[0] for x in server.getpeercert()["subject"]).get("commonName") == CLIENT_ID
    assert client.getpeercert()["subjectAltName"] == (("DNS", SERVER_ID),)
    assert client.selected_alpn_protocol() is None  # transparent mode: no ALPN


def test_transport_header_alpn(pki):
    server, client, error = exchange(server_context(pki["server"], pki["anchor"], (TRANSPORT_ALPN,)),
                                     client_context(pki["client"], pki["anchor"], (TRANSPORT_ALPN,)), SERVER_ID)
    assert error is None and server.selected_alpn_protocol() == TRANSPORT_ALPN


def test_client_without_certificate_is_refused(pki):
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(pki["anchor"])
    _, _, error = exchange(server_context(pki["server"], pki["anchor"]), bare, SERVER_ID)
    assert error is not None
    assert "CERTIFICATE_REQUIRED" in str(error).upper() or "PEER DID NOT RETURN A CERTIFICATE" in str(error).upper()


def test_tls12_only_client_is_refused(pki):
    old = client_context(pki["client"], pki["anchor"])
    old.minimum_version = ssl.TLSVersion.TLSv1_2
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    _, _, error = exchange(server_context(pki["server"], pki["anchor"]), old, SERVER_ID)
    assert error is not None and ("PROTOCOL" in str(error).upper() or "VERSION" in str(error).upper())


def test_certificate_from_another_anchor_is_refused(pki):
    stranger = client_context(pki["stranger"], pki["anchor"])
    _, _, error = exchange(server_context(pki["server"], pki["anchor"]), stranger, SERVER_ID)
    assert error is not None


def test_client_checks_the_server_identity(pki):
    _, _, error = exchange(server_context(pki["server"], pki["anchor"]),
                           client_context(pki["client"], pki["anchor"]), identity("emoji", "emojivoto"))
    assert isinstance(error, ssl.SSLCertVerificationError)
