"""A throwaway certificate authority for TLS between the router and the regions on this machine.

`make up ARGS=--tls` (and the TLS tests) make a fresh CA, a server certificate for 127.0.0.1
and localhost that every regional replica serves, and a client certificate the router presents
(the replicas require one: mutual TLS). The CA's key is never written: nothing else gets signed.
"""

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA certificate and the server and client certificates with keys are."""

    directory: Path
    require_client_cert: bool = True  # servers ask for the router's certificate: mutual TLS

    @property
    def ca(self) -> Path:
        """The CA certificate (PEM): what both sides verify the other against."""
        return self.directory / "ca.pem"

    def cert(self, role: str) -> Path:
        """The certificate of `server` or `client` (PEM)."""
        return self.directory / f"{role}.pem"

    def key(self, role: str) -> Path:
        """The private key of `server` or `client` (PEM, mode 0600)."""
        return self.directory / f"{role}.key"

    def uvicorn_args(self) -> list[str]:
        """uvicorn's flags to serve HTTPS with the server certificate (and require clients')."""
        args = [
            "--ssl-certfile",
            str(self.cert("server")),
            "--ssl-keyfile",
            str(self.key("server")),
        ]
        if self.require_client_cert:
            args += ["--ssl-ca-certs", str(self.ca), "--ssl-cert-reqs", str(int(ssl.CERT_REQUIRED))]
        return args

    def router_env(self) -> dict[str, str]:
        """The router's settings to verify the replicas and present its client certificate."""
        return {
            "ROUTER_UPSTREAM_CA_FILE": str(self.ca),
            "ROUTER_UPSTREAM_CERT_FILE": str(self.cert("client")),
            "ROUTER_UPSTREAM_KEY_FILE": str(self.key("client")),
        }

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the CA and presents the client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(self.cert("client"), self.key("client"))
        return context


def make_throwaway_ca(
    directory: Path,
    *,
    name: str = "cinema local CA",
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
) -> TlsFiles:
    """Write a fresh CA certificate and server and client certificates it signed for `hosts`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names = [_general_name(host) for host in hosts]
    for role, purpose in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cinema {role}")])
        cert = (
            _builder(subject, ca_name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files.cert(role).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(files.key(role), key)
    return files


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
        crl_sign=cert_sign,
    )


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(pem)
