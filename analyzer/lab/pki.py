"""The lab's identity PKI: a trust anchor, an issuer, and one leaf per meshed pod, like Linkerd's.

Linkerd's chain is trust anchor (``root.linkerd.cluster.local``) -> issuer (``identity.linkerd.cluster.local``)
-> workload leaf whose only DNS SAN is the pod's identity. Leaves live 24 h, as the proxy's do. Keys are
ECDSA P-256. This module only writes PEM files; it opens no sockets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ANCHOR_CN = "root.linkerd.cluster.local"
ISSUER_CN = "identity.linkerd.cluster.local"
LEAF_LIFETIME = dt.timedelta(hours=24)
CA_LIFETIME = dt.timedelta(days=365)
BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences, as cert issuers usually do


@dataclass(frozen=True, slots=True)
class LeafFiles:
    """Where one workload's credentials are: chain = leaf + issuer (what the proxy presents)."""

    chain: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca(cn: str, key, issuer_name: x509.Name, issuer_key, now: dt.datetime, path_length: int | None):
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf(identity: str, key, issuer: x509.Certificate, issuer_key, now: dt.datetime) -> x509.Certificate:
    # X.509 caps a CN at 64 characters (RFC 5280 ub-common-name) and identities are often longer; then the
    # subject is empty and the SAN, the identity that counts, must be critical (RFC 5280 section 4.2.1.6).
    subject = _name(identity) if len(identity) <= 64 else x509.Name([])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        # Exactly one DNS SAN, the identity (reference: "Each certificate has exactly that one DNS SAN").
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=not subject)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


class Authority:
    """Trust anchor + issuer, able to mint leaves; everything is written under `directory`."""

    def __init__(self, directory: Path, now: dt.datetime | None = None):
        self.directory = directory
        self.now = now or dt.datetime.now(dt.timezone.utc)
        directory.mkdir(parents=True, exist_ok=True)
        self._anchor_key = _key()
        self.anchor = _ca(ANCHOR_CN, self._anchor_key, _name(ANCHOR_CN), self._anchor_key, self.now, None)
        self._issuer_key = _key()
        self.issuer = _ca(ISSUER_CN, self._issuer_key, self.anchor.subject, self._anchor_key, self.now, 0)
        self.anchor_path = directory / "trust-anchor.crt"
        self.anchor_path.write_bytes(self.anchor.public_bytes(serialization.Encoding.PEM))
        (directory / "issuer.crt").write_bytes(self.issuer.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, identity: str) -> LeafFiles:
        """Write ``<name>.crt`` (leaf + issuer) and ``<name>.key`` (mode 0600) for `identity`."""
        key = _key()
        leaf = _leaf(identity, key, self.issuer, self._issuer_key, self.now)
        files = LeafFiles(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        files.chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM)
                                + self.issuer.public_bytes(serialization.Encoding.PEM))
        files.key.touch(mode=0o600)
        files.key.write_bytes(_pem_key(key))
        return files

    def trust_root_sha256(self) -> str:
        """Hex SHA-256 of the anchor (the `linkerd.io/trust-root-sha256` annotation)."""
        return self.anchor.fingerprint(hashes.SHA256()).hex()


def leaf_files(directory: Path, name: str) -> LeafFiles:
    return LeafFiles(directory / f"{name}.crt", directory / f"{name}.key")
