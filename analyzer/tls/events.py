"""Events the TLS parser emits: immutable records of what one direction of a connection sent.

Role: plain data with RFC 8446 field names (``legacy_version``, ``cipher_suites``) plus derived fields
(``sni``, ``alpn``, ``supported_versions``) and the ``NEED_DATA`` sentinel. Must not: parse bytes, hold
parser state or reference flows; classification decides what the events *mean*.

Events are few per connection (a hello, a handful of records), so frozen slotted dataclasses are cheap
enough here; packets never become dataclasses (STYLE "The hot path is per packet").
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.tls.constants import ALERT_FATAL, is_grease


class _Sentinel(type):
    """h11's sentinel trick: the class itself is the value, compared with ``is``, printed by name."""

    def __repr__(cls) -> str:
        return cls.__name__


class NEED_DATA(metaclass=_Sentinel):  # noqa: N801 -- sentinels are UPPER classes (STYLE "Naming")
    """Returned by ``TLSParser.next_event`` when it cannot produce an event from the bytes it has."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """ClientHello (RFC 8446 4.1.2), or an SSLv2-format compatible one (RFC 5246 E.2, ``sslv2=True``).

    ``extensions`` lists extension types in wire order. ``record_version`` is the record header version
    (0x0002 for the SSLv2 format). ``length`` is the handshake body length. For SSLv2 hellos
    ``cipher_suites`` holds the 24-bit CipherSpecs (a TLS suite 0x00XXXX keeps its 16-bit value) and
    ``random`` is the challenge right-aligned in 32 bytes (RFC 5246 E.2).
    """

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes
    extensions: tuple[int, ...]
    sni: str | None
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    record_version: int
    length: int
    sslv2: bool = False

    @property
    def offered_max_version(self) -> int:
        """Highest non-GREASE supported_versions entry (RFC 8446 4.2.1), else ``legacy_version``."""
        real = [v for v in self.supported_versions if not is_grease(v)]
        return max(real) if real else self.legacy_version


@dataclass(frozen=True, slots=True)
class ServerHello:
    """ServerHello or HelloRetryRequest (RFC 8446 4.1.3, 4.1.4); HRR is told apart by its random."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: tuple[int, ...]
    supported_version: int | None
    alpn: str | None
    key_share_group: int | None
    is_hello_retry_request: bool
    record_version: int

    @property
    def version(self) -> int:
        """The negotiated version: supported_versions if present (TLS 1.3 keeps legacy_version at
        0x0303, RFC 8446 4.1.3), else legacy_version -- as Zeek's ``main.zeek`` does."""
        return self.supported_version if self.supported_version is not None else self.legacy_version


@dataclass(frozen=True, slots=True)
class Certificate:
    """A plaintext Certificate (TLS <= 1.2, RFC 5246 7.4.2). Sent by a client it proves mutual TLS;
    empty, it says the client had no certificate to offer (RFC 5246 7.4.6)."""

    cert_lengths: tuple[int, ...]

    @property
    def is_empty(self) -> bool:
        return not self.cert_lengths


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A plaintext CertificateRequest (RFC 5246 7.4.4): the server asks for client authentication."""

    length: int


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """Any other plaintext handshake message, e.g. ServerHelloDone (14) or ClientKeyExchange (16)."""

    msg_type: int
    length: int


@dataclass(frozen=True, slots=True)
class EncryptedHandshake:
    """A handshake record sent after this direction's ChangeCipherSpec (TLS 1.2 Finished); not parsed."""

    length: int


@dataclass(frozen=True, slots=True)
class ChangeCipherSpec:
    """ChangeCipherSpec (RFC 5246 7.1); in TLS 1.3 the middlebox-compatibility dummy (RFC 8446 D.4)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """An Alert record (RFC 8446 6). ``encrypted`` when sent after ChangeCipherSpec or not 2 bytes long;
    level and description are then unknown (``None``)."""

    level: int | None
    description: int | None
    encrypted: bool

    @property
    def fatal(self) -> bool:
        """True for a plaintext fatal alert (RFC 5246 7.2); False when warning or unreadable."""
        return self.level == ALERT_FATAL


@dataclass(frozen=True, slots=True)
class ApplicationData:
    """One application_data record (type 23); its body is skipped, never buffered."""

    length: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One heartbeat record (RFC 6520); its body is skipped."""

    length: int


Event = (ClientHello | ServerHello | Certificate | CertificateRequest | HandshakeMessage
         | EncryptedHandshake | ChangeCipherSpec | Alert | ApplicationData | Heartbeat)
