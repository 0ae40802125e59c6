"""Sans-IO TLS dissection, standard library only (it must run on the linkerd-debug image's bare python3).

Role: the public surface of ``analyzer.tls`` -- ``TLSParser`` with its ``NEED_DATA`` sentinel and
events, and the ``detect`` helpers for streams that do not start with a handshake.
Must not: import anything outside the standard library and ``analyzer.errors``, or anything from the
flow, report or CLI layers (``tests/test_layering.py`` checks this).

    parser = TLSParser()                      # one per direction
    parser.receive_data(chunk)
    while (event := parser.next_event()) is not NEED_DATA:
        handle(event)                         # ClientHello(sni=..., alpn=(...), ...)
"""

from analyzer.errors import TLSParseError
from analyzer.tls.constants import alert_name, cipher_name, group_name, is_grease, version_name
from analyzer.tls.detect import RecordRun, find_client_hello, find_record_run, find_server_hello, is_record_header
from analyzer.tls.events import (
    NEED_DATA,
    Alert,
    ApplicationData,
    Certificate,
    CertificateRequest,
    ChangeCipherSpec,
    ClientHello,
    EncryptedHandshake,
    Event,
    HandshakeMessage,
    Heartbeat,
    ServerHello,
)
from analyzer.tls.parser import TLSParser

__all__ = [
    "NEED_DATA", "TLSParseError", "TLSParser",
    "Alert", "ApplicationData", "Certificate", "CertificateRequest", "ChangeCipherSpec",
    "ClientHello", "EncryptedHandshake", "Event", "HandshakeMessage", "Heartbeat", "ServerHello",
    "RecordRun", "find_client_hello", "find_record_run", "find_server_hello", "is_record_header",
    "alert_name", "cipher_name", "group_name", "is_grease", "version_name",
]
