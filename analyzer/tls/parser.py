"""TLSParser: a sans-IO parser for ONE direction of a TLS connection (after h11's ``Connection``).

Role: turn the in-order bytes one side sent into events -- hellos, certificates, alerts, record counts --
via ``receive_data()`` / ``next_event()``. The state rules all live here:

* Rule 1: the first bytes must be a valid record header, or an SSLv2-format ClientHello
  (RFC 5246 E.2); anything else is ``TLSParseError``, which is how "not TLS" is decided.
* Rule 2: bodies are held only for what we decode: plaintext handshake (up to ``max_buffer`` per
  message), ChangeCipherSpec and 2-byte alerts. Application data, heartbeats and anything sent after
  this direction's ChangeCipherSpec are skipped as they arrive and only counted, so memory stays bounded
  however long the connection runs.
* Rule 3: after ChangeCipherSpec a handshake record is encrypted (TLS 1.2 Finished) -- except the
  plaintext hello TLS 1.3 middlebox mode sends after a HelloRetryRequest (RFC 8446 D.4).
* Rule 4: once ``next_event`` raised, it raises the same error forever; input is then dropped.

Must not: do I/O, know about flows, packets or the other direction, decrypt, or judge what the events
mean (that is ``analysis``).
"""

from __future__ import annotations

from collections import deque

from analyzer.errors import TLSParseError
from analyzer.tls.constants import (ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, CLIENT_HELLO, HANDSHAKE,
                                    HANDSHAKE_HEADER_LEN, HEARTBEAT, RECORD_HEADER_LEN, SERVER_HELLO)
from analyzer.tls.events import (NEED_DATA, Alert, ApplicationData, ChangeCipherSpec, ClientHello,
                                 EncryptedHandshake, Event, Heartbeat, ServerHello)
from analyzer.tls.handshake import HandshakeBuffer, parse_message, parse_sslv2_client_hello
from analyzer.tls.records import SSLV2_HEADER_LEN, RecordBuffer, parse_record_header, sslv2_hello_length

TLS13 = 0x0304
MIN_HELLO_BODY = 38  # a ServerHello with empty session_id and no extensions; a ClientHello is longer
_SKIPPED = {  # events for records whose body is counted, not read
    APPLICATION_DATA: ApplicationData,
    HANDSHAKE: EncryptedHandshake,
    ALERT: lambda length: Alert(None, None, True),
    HEARTBEAT: Heartbeat,
}


class TLSParser:
    """Parser for the bytes one TLS endpoint sent; use one instance per direction.

    Attributes: ``records`` (complete records seen), ``encrypted`` (this direction sent
    ChangeCipherSpec), ``first_record_version`` (None until a header was read; 0x0002 for SSLv2),
    ``consumed`` (input bytes framed into records, including skipped bodies), ``buffered`` (bytes
    held until more arrive: unconsumed input plus an unfinished handshake message) and ``partial``.
    """

    def __init__(self, max_buffer: int = 64 * 1024) -> None:
        self._input = RecordBuffer()
        self._handshake = HandshakeBuffer(max_buffer)
        self._events: deque = deque()
        self._skip_type = 0  # content type of the record whose body is being skipped, 0 if none
        self._skip_length = 0
        self._skip_left = 0
        # Hello type that may follow our own CCS in plaintext: the client's second ClientHello or the
        # server's ServerHello after a HelloRetryRequest (RFC 8446 D.4, 4.1.4).
        self._retry_hello: int | None = None
        self._error: TLSParseError | None = None
        self.records = 0
        self.encrypted = False
        self.first_record_version: int | None = None

    @property
    def buffered(self) -> int:
        return len(self._input) + self._handshake.buffered

    @property
    def partial(self) -> bool:
        """True when the input so far ends inside a record or a handshake message. Unlike ``buffered``
        this includes a skipped body cut short (e.g. application data at the end of a capture)."""
        return bool(self._skip_type or self.buffered)

    @property
    def consumed(self) -> int:
        return self._input.consumed

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes for ``next_event``; never parses, never raises. ``b""`` is a no-op (a truncated
        capture is the common end, so EOF needs no signal: ``buffered`` tells what was left)."""
        if self._error is None:
            self._input.feed(data)

    def next_event(self) -> Event | type[NEED_DATA]:
        """Return the next event or ``NEED_DATA``, or raise ``TLSParseError``.

        Anything else (another exception, another return type) is a bug: the property tests feed random
        bytes to hold this contract (h11 ``next_event``, h2's fuzzing). Events decoded before an error
        are still returned, then the error is raised on every later call.
        """
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            raise self._error
        try:
            while not self._events:
                if not self._step():
                    return NEED_DATA
        except TLSParseError as exc:
            self._error = exc
            self._input.clear()
            if not self._events:
                raise
        return self._events.popleft()

    def _step(self) -> bool:
        """Consume one record header, record or skipped chunk; False when more input is needed.

        Only ever looks at whole headers and whole (wanted) bodies, so how the input was chunked cannot
        change the outcome -- the split-invariance property test holds it to that.
        """
        if self._skip_type:
            # Rule 2: drop what has arrived of a skipped body; the event comes when the record ends.
            self._skip_left -= self._input.skip(self._skip_left)
            if self._skip_left:
                return False
            self.records += 1
            self._events.append(_SKIPPED[self._skip_type](self._skip_length))
            self._skip_type = 0
            return True

        header = self._input.peek(RECORD_HEADER_LEN)
        if header is None:
            return False
        if header[0] & 0x80 and self._input.consumed == 0:  # no TLS content type has the high bit
            return self._step_sslv2(header)
        ctype, version, length = parse_record_header(header)
        if self.first_record_version is None:
            self.first_record_version = version

        wants_body = self._wants_body(ctype, length)
        if wants_body is None:
            return False
        if not wants_body:  # count it without holding it, however large it is
            self._input.skip(RECORD_HEADER_LEN)
            self._skip_type, self._skip_length, self._skip_left = ctype, length, length
            return True
        record = self._input.take(RECORD_HEADER_LEN + length)
        if record is None:  # at most 2^14 + 2048 bytes wait here
            return False
        self.records += 1
        body = record[RECORD_HEADER_LEN:]
        if ctype == HANDSHAKE:
            self._handshake.feed(body, version)
            while (message := self._handshake.maybe_message()) is not None:
                self._events.append(self._on_handshake(*message))
        elif ctype == CHANGE_CIPHER_SPEC:
            # RFC 8446 5 / RFC 5246 7.1: the single byte 0x01. A key change in the middle of a handshake
            # message leaves it unfinishable (RFC 8446 5.1: it must end on a record boundary).
            if body != b"\x01":
                raise TLSParseError(f"ChangeCipherSpec body {body[:8].hex()} is not 01")
            if self._handshake.buffered:
                raise TLSParseError("ChangeCipherSpec inside a fragmented handshake message")
            self.encrypted = True
            self._events.append(ChangeCipherSpec())
        else:  # a plaintext 2-byte alert: level, description (RFC 8446 6)
            self._events.append(Alert(body[0], body[1], False))
        return True

    def _wants_body(self, ctype: int, length: int) -> bool | None:
        """Rule 2 and Rule 3: is this record's body decoded (True), skipped and counted (False), or
        undecidable until its first 4 body bytes arrive (None)?"""
        if ctype == CHANGE_CIPHER_SPEC:
            return True
        if ctype == ALERT:
            # RFC 8446 5.1: alerts are never fragmented or coalesced, so any other length is ciphertext.
            return length == 2 and not self.encrypted
        if ctype != HANDSHAKE:
            return False
        if not self.encrypted or self._handshake.buffered:
            # Plaintext, or the rest of a retried hello: a message that began in plaintext continues in
            # the next handshake record (RFC 8446 5.1), and CCS cannot have cut it (see _step).
            return True
        if self._retry_hello is None:
            return False
        # TLS 1.3 compat mode: decide from the handshake header whether this is the retried hello.
        # An AEAD TLS 1.2 Finished starts with its explicit nonce, the sequence number 0; a CBC one
        # with a random IV, which matches type *and* a sane u24 length with probability < 2^-16.
        if length < HANDSHAKE_HEADER_LEN:
            return False  # too short to hold a hello header: ciphertext
        peek = self._input.peek(RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN)
        if peek is None:
            return None
        declared = int.from_bytes(peek[6:9], "big")
        return peek[5] == self._retry_hello and MIN_HELLO_BODY <= declared <= self._handshake.max_message

    def _on_handshake(self, msg_type: int, body: bytes, record_version: int) -> Event:
        """Decode one message and track whether a plaintext hello may still follow our CCS (Rule 3)."""
        event = parse_message(msg_type, body, record_version)
        if isinstance(event, ClientHello):
            # Only a first ClientHello offering TLS 1.3 can be retried after an HRR.
            offers_tls13 = not self.encrypted and event.offered_max_version >= TLS13
            self._retry_hello = CLIENT_HELLO if offers_tls13 else None
        elif isinstance(event, ServerHello):
            self._retry_hello = SERVER_HELLO if event.is_hello_retry_request else None
        return event

    def _step_sslv2(self, header: bytes) -> bool:
        """Rule 1's exception: an SSLv2-format ClientHello as the very first record (RFC 5246 E.2)."""
        length = sslv2_hello_length(header)
        if length is None:
            parse_record_header(header)  # type >= 0x80 never is valid: raises "not a TLS record: ..."
        record = self._input.take(SSLV2_HEADER_LEN + length)
        if record is None:
            return False
        self.records += 1
        self.first_record_version = 0x0002
        self._events.append(parse_sslv2_client_hello(record[SSLV2_HEADER_LEN:]))
        return True
