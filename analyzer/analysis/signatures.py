"""Cleartext protocol signatures: the first bytes of a direction -> what protocol spoke them.

Role: Zeek's ``dpd.sig`` for the protocols a mesh audit meets: HTTP/1.x, the HTTP/2 cleartext preface
(h2c, gRPC without TLS), SSH, and the greeting lines of servers that can upgrade to TLS (STARTTLS).
Each signature is one compiled bytes regex anchored at the start of the data.

Rules: standard library only; never raises; a signature describes bytes, it never decides a verdict
(``verdict.py`` does, and only from what these bytes are).
"""

from __future__ import annotations

import re

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 3.4

_HTTP_METHODS = rb"(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT|TRACE|PROPFIND|MKCOL|COPY|MOVE|LOCK|UNLOCK|REPORT|SEARCH|SUBSCRIBE|NOTIFY)"

# (name, regex, role) -- role "orig": sent by the client first, "resp": a server greeting or reply.
SIGNATURES: tuple[tuple[str, re.Pattern[bytes], str], ...] = (
    ("h2c", re.compile(re.escape(H2_PREFACE[:16])), "orig"),
    ("http/1.1", re.compile(rb"(" + _HTTP_METHODS + rb") (\S{1,200}) HTTP/1\.[01]\r?\n"), "orig"),
    ("http/1.1", re.compile(rb"(" + _HTTP_METHODS + rb") (\S{1,200})"), "orig"),  # request line cut short
    ("http/1.1", re.compile(rb"HTTP/1\.[01] (\d{3})[ \r\n]"), "resp"),
    ("ssh", re.compile(rb"SSH-(\d\.\d+)-([\x21-\x7e]{0,60})"), "either"),
    # OpenVPN over TCP (no tls-auth): 2-byte length, P_CONTROL_HARD_RESET_CLIENT_V2 (7 << 3, key id 0),
    # an 8-byte session id, an empty ACK array and message packet-id 0 (openvpn ssl_pkt.h).
    ("openvpn", re.compile(rb"\x00[\x0e-\xff]\x38[\x00-\xff]{8}\x00\x00\x00\x00\x00", re.S), "orig"),
    ("smtp", re.compile(rb"220[ -][^\r\n]{0,200}(?:SMTP|ESMTP|mail|Postfix|Exim)", re.I), "resp"),
    ("smtp", re.compile(rb"(?:EHLO|HELO) [^\r\n]{1,200}\r?\n", re.I), "orig"),
    ("ftp", re.compile(rb"220[ -][^\r\n]{0,200}FTP", re.I), "resp"),
    ("ftp", re.compile(rb"(?:USER|AUTH TLS|AUTH SSL|FEAT)[ \r\n]", re.I), "orig"),
    ("pop3", re.compile(rb"\+OK[ \r\n]"), "resp"),
    ("imap", re.compile(rb"\* (?:OK|PREAUTH)[ \r\n]"), "resp"),
    ("imap", re.compile(rb"[A-Za-z0-9.]{1,10} (?:CAPABILITY|STARTTLS|LOGIN)\r?\n", re.I), "orig"),
    ("xmpp", re.compile(rb"<\?xml[^>]{0,100}\?>\s*<stream:stream"), "either"),
    ("irc", re.compile(rb"(?:NICK|USER|CAP LS|PASS) [^\r\n]{1,100}\r?\n"), "orig"),
    ("postgresql", re.compile(rb"\x00\x00\x00[\x08-\xff]\x00\x03\x00\x00", re.S), "orig"),  # startup v3.0
    ("postgresql", re.compile(rb"\x00\x00\x00\x08\x04\xd2\x16\x2f", re.S), "orig"),  # SSLRequest
    ("mysql", re.compile(rb"[\x00-\xff]{3}\x00\x0a[3-9]\.[0-9][^\x00]{0,40}\x00", re.S), "resp"),
    ("redis", re.compile(rb"\*[1-9][0-9]?\r\n\$[0-9]{1,5}\r\n"), "orig"),
    ("socks5", re.compile(rb"\x05[\x01-\x09]\x00", re.S), "orig"),
    ("socks4", re.compile(rb"\x04\x01[\x00-\xff]{6}[\x20-\x7e]{0,64}\x00", re.S), "orig"),
    ("ldap", re.compile(rb"\x30[\x00-\x84][\x00-\xff]{0,4}\x02[\x01-\x04]", re.S), "orig"),
)

# Protocols that never turn into TLS on the same connection (no STARTTLS verb): reading on is waste
# (an HTTP CONNECT is the exception, and it is the first line).
NO_UPGRADE = frozenset({"http/1.1", "h2c", "ssh", "openvpn", "redis", "mysql"})
# Encrypted, but not TLS: such a flow is ``unknown``, never ``plaintext`` (it is encrypted) and never
# ``tls``.  Names as the signatures above and Wireshark's dissectors (frame.protocols) give them; the
# native engine recognises ssh and openvpn, Wireshark all four.
ENCRYPTED_NOT_TLS = frozenset({"ssh", "openvpn", "skype", "kerberos-gss-wrapped"})


def identify(data: bytes, role: str) -> tuple[str, str] | None:
    """Return (protocol, detail) when ``data`` starts like a known cleartext protocol, else None.

    ``role`` is "orig" for the client's bytes and "resp" for the server's; a signature only matches in
    the direction its protocol speaks first (or "either").
    """
    for name, rx, sig_role in SIGNATURES:
        if sig_role != "either" and sig_role != role:
            continue
        m = rx.match(data)
        if m:
            return name, _detail(name, m, data)
    return None


def _detail(name: str, m: re.Match[bytes], data: bytes) -> str:
    if name == "http/1.1" and m.lastindex == 2:
        return f"HTTP/1.x request {m.group(1).decode()} {escape(m.group(2), 60)}"
    if name == "http/1.1" and m.lastindex == 1:
        return f"HTTP/1.x response {m.group(1).decode()}"
    if name == "h2c":
        return "HTTP/2 cleartext connection preface (h2c / gRPC without TLS)"
    if name == "ssh":
        return f"SSH-{m.group(1).decode()} banner {escape(m.group(2), 40)}"
    if name == "openvpn":
        return "OpenVPN hard reset from the client"
    line = data.split(b"\n", 1)[0][:60]
    return f"{name} {escape(line, 60)}"


def escape(data: bytes, limit: int = 32) -> str:
    """A short, printable, unambiguous rendering of bytes: ASCII kept, the rest as \\xNN."""
    out = []
    for b in data[:limit]:
        if 0x20 <= b < 0x7F and b != 0x5C:
            out.append(chr(b))
        elif b == 0x5C:
            out.append("\\\\")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out) + ("..." if len(data) > limit else "")


def looks_opaque(data: bytes) -> bool:
    """True for bytes that look encrypted or compressed: many distinct values, little printable text."""
    sample = data[:512]
    if len(sample) < 32:
        return False
    printable = sum(1 for b in sample if 0x20 <= b < 0x7F or b in (9, 10, 13))
    return printable / len(sample) < 0.75 and len(set(sample)) > min(len(sample), 256) * 0.45
