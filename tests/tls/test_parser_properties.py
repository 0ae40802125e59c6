"""Hypothesis properties of TLSParser: totality, split invariance, round-trip (STYLE "Tests")."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.tls import (
    NEED_DATA,
    Alert,
    ApplicationData,
    Certificate,
    CertificateRequest,
    ChangeCipherSpec,
    ClientHello,
    EncryptedHandshake,
    HandshakeMessage,
    Heartbeat,
    ServerHello,
    TLSParseError,
    TLSParser,
    is_grease,
)
from tests.tlsbytes import (
    alert,
    app_data,
    ccs,
    certificate,
    client_hello,
    handshake_msg,
    handshake_record,
    records,
    server_hello,
    sslv2_client_hello,
    tls12_exchange,
    tls13_exchange,
)

EVENT_TYPES = (ClientHello, ServerHello, Certificate, CertificateRequest, HandshakeMessage,
               EncryptedHandshake, ChangeCipherSpec, Alert, ApplicationData, Heartbeat)
PROPERTY = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])

EXCHANGES = [b"".join(side) for ex in (tls13_exchange(), tls13_exchange(pq=True, alpn=("h2",)),
                                       tls12_exchange(), tls12_exchange(client_cert=False))
             for side in ex]


def run(chunks):
    """(events, error message or None). Anything but events, NEED_DATA or TLSParseError escapes."""
    parser, events = TLSParser(), []
    try:
        for chunk in chunks:
            parser.receive_data(chunk)
            while (event := parser.next_event()) is not NEED_DATA:
                assert isinstance(event, EVENT_TYPES), event
                events.append(event)
    except TLSParseError as exc:
        with_error = (events, str(exc))
        try:  # Rule 4: the same error again
            parser.next_event()
        except TLSParseError as again:
            assert again is exc
        return with_error
    return events, None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


# Streams that go deep into the parser: well-formed pieces, random records, random hellos, noise.
_record = st.builds(records, st.integers(20, 24), st.binary(min_size=1, max_size=300),
                    st.sampled_from([0x0301, 0x0303]))
_handshake = st.builds(lambda t, b, f: handshake_record(handshake_msg(t, b), max_fragment=f),
                       st.sampled_from([1, 2, 11, 13, 14, 20]), st.binary(max_size=300),
                       st.integers(1, 400))
_piece = st.one_of(
    _record, _handshake, st.binary(max_size=20),
    st.sampled_from([ccs(), alert(), app_data(40), handshake_record(client_hello()),
                     handshake_record(server_hello(hrr=True)), handshake_record(certificate()),
                     sslv2_client_hello()]),
)
tls_ish = st.lists(_piece, max_size=8).map(b"".join)


@st.composite
def mutated_exchange(draw):
    data = bytearray(draw(st.sampled_from(EXCHANGES)))
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


any_stream = st.one_of(st.binary(max_size=3000), tls_ish, mutated_exchange())


@PROPERTY
@given(st.binary(max_size=5000))
def test_totality_on_random_binary(data):
    run([data])


@PROPERTY
@given(any_stream, st.lists(st.integers(0, 10**6), max_size=12))
def test_totality_and_split_invariance(data, cuts):
    assert run(split(data, cuts)) == run([data])


@PROPERTY
@given(st.sampled_from(EXCHANGES), st.lists(st.integers(0, 10**6), max_size=20))
def test_valid_exchanges_never_fail_however_split(data, cuts):
    events, error = run(split(data, cuts))
    assert error is None
    assert events == run([data])[0]


def _shown(raw: bytes) -> str:
    """How a name must come out: printable ASCII as is, every other byte as a \\xNN escape."""
    return "".join(chr(b) if 0x20 <= b < 0x7F or b == 0x5C else f"\\x{b:02x}" for b in raw)


@PROPERTY
@given(sni=st.binary(min_size=1, max_size=300),
       alpn=st.lists(st.binary(min_size=1, max_size=255), max_size=6),
       versions=st.lists(st.integers(0, 0xFFFF), max_size=127),
       groups=st.lists(st.integers(0, 0xFFFF), max_size=40),
       share_groups=st.lists(st.sampled_from([0x001D, 0x0017, 0x11EC, 0x6399, 0x2A2A]),
                             unique=True, max_size=4),
       fragment=st.integers(1, 2000))
def test_client_hello_round_trip(sni, alpn, versions, groups, share_groups, fragment):
    msg = client_hello(sni=sni, alpn=tuple(alpn), versions=tuple(versions), groups=tuple(groups),
                       key_share_groups=tuple(share_groups))
    (hello,), error = run([handshake_record(msg, max_fragment=fragment)])
    assert error is None
    assert hello.sni == _shown(sni)
    assert hello.alpn == tuple(_shown(p) for p in alpn)
    assert hello.supported_versions == tuple(versions)
    assert hello.supported_groups == tuple(groups)
    assert hello.key_share_groups == tuple(share_groups)
    real = [v for v in versions if not is_grease(v)]
    assert hello.offered_max_version == (max(real) if real else 0x0303)
    assert hello.length == len(msg) - 4


@PROPERTY
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=253))
def test_ascii_sni_round_trips_exactly(sni):
    (hello,), _ = run([handshake_record(client_hello(sni=sni))])
    assert hello.sni == sni


@PROPERTY
@given(version=st.one_of(st.none(), st.integers(0, 0xFFFF)), suite=st.integers(0, 0xFFFF),
       hrr=st.booleans(), alpn=st.one_of(st.none(), st.binary(min_size=1, max_size=255)),
       group=st.sampled_from([0x001D, 0x0017, 0x11EC]))
def test_server_hello_round_trip(version, suite, hrr, alpn, group):
    (hello,), error = run([handshake_record(
        server_hello(version=version, cipher_suite=suite, hrr=hrr, alpn=alpn, key_share_group=group))])
    assert error is None
    assert hello.version == (0x0303 if version is None else version)
    assert hello.cipher_suite == suite
    assert hello.is_hello_retry_request is hrr
    assert hello.alpn == (None if alpn is None else _shown(alpn))
    assert hello.key_share_group == (None if version is None else group)
