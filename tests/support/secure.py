"""ZooKeeper servers that demand more than a plain connection: mutual TLS, and SASL.

The TLS server is Debian's ZooKeeper with the Netty connection factory (the
two netty jars its manifest leaves out added to the classpath), a PKCS12
keystore and a JKS truststore made here with openssl and keytool from a
throwaway CA. Client authentication is required, and a client certificate's
subject is its ``x509`` ACL identity. The SASL server takes DIGEST-MD5 logins
from a JAAS file.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from zkdrift.devtools.zkserver import ZooKeeperServer, free_port

NETTY_JARS = (Path("/usr/share/java/netty-codec.jar"), Path("/usr/share/java/netty-resolver.jar"))
CLIENT_SUBJECT = "CN=zkdrift-client,O=zkdrift-tests"
# The x509 id ZooKeeper gives that client: its subject as Java prints it.
CLIENT_X509_ID = "O=zkdrift-tests,CN=zkdrift-client"  # RFC 2253: last RDN first
SASL_USER = "bob"


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # signed by another CA: the server must refuse it
    other_key: Path


def make_certificates(directory: Path, store_password: str) -> Certificates:
    """A CA, a server certificate for 127.0.0.1, a client certificate, the server's
    keystore (PKCS12) and truststore (JKS), and a client signed by a stranger CA."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    days = "2"
    for ca in ("ca", "stranger-ca"):
        _run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days,
            "-subj", f"/CN={ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d,
        )  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, ca, ext in (
        ("server", "/CN=127.0.0.1", "ca", ["-extfile", "server.ext"]),
        ("client", "/" + CLIENT_SUBJECT.replace(",", "/"), "ca", []),
        ("other", "/CN=intruder", "stranger-ca", []),
    ):
        _run(
            "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d,
        )  # fmt: skip
        _run(
            "openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
            "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", days, "-out", f"{name}.pem",
            *ext, cwd=d,
        )  # fmt: skip
    _run(
        "openssl", "pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key",
        "-certfile", "ca.pem", "-out", "server.p12", "-passout", f"pass:{store_password}",
        cwd=d,
    )  # fmt: skip
    _run(
        "keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
        "-keystore", "trust.jks", "-storetype", "JKS", "-storepass", store_password, cwd=d,
    )  # fmt: skip
    return Certificates(
        ca=d / "ca.pem",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        other_cert=d / "other.pem",
        other_key=d / "other.key",
    )


@dataclass
class TlsServer:
    server: ZooKeeperServer
    secure_port: int
    certs: Certificates

    @property
    def connect_string(self) -> str:
        return f"127.0.0.1:{self.secure_port}"


def start_tls_server(directory: Path) -> TlsServer:
    password = secrets.token_hex(12)
    certs = make_certificates(directory / "certs", password)
    secure_port = free_port()
    server = ZooKeeperServer(
        data_dir=directory / "zk",
        port=free_port(),  # plaintext, for the readiness check only
        test_mode=True,
        extra_config=(
            f"secureClientPort={secure_port}",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            f"ssl.keyStore.location={certs.ca.parent / 'server.p12'}",
            f"ssl.keyStore.password={password}",
            "ssl.keyStore.type=PKCS12",
            f"ssl.trustStore.location={certs.ca.parent / 'trust.jks'}",
            f"ssl.trustStore.password={password}",
            "ssl.trustStore.type=JKS",
        ),
        extra_classpath=NETTY_JARS,
    )
    server.start()
    return TlsServer(server, secure_port, certs)


@dataclass
class SaslServer:
    server: ZooKeeperServer
    password: str

    @property
    def connect_string(self) -> str:
        return self.server.connect_string

    @property
    def auth(self) -> str:
        """The credentials as zkdrift takes them from the environment."""
        return f"sasl:{SASL_USER}:{self.password}"


def start_sasl_server(directory: Path) -> SaslServer:
    password = secrets.token_hex(12)
    directory.mkdir(parents=True, exist_ok=True)
    jaas = directory / "jaas.conf"
    jaas.write_text(
        "Server {\n"
        "  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        f'  user_{SASL_USER}="{password}";\n'
        "};\n"
    )
    server = ZooKeeperServer(
        data_dir=directory / "zk",
        port=free_port(),
        test_mode=True,
        extra_config=(
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        ),
        jvm_flags=(f"-Djava.security.auth.login.config={jaas}",),
    )
    server.start()
    return SaslServer(server, password)
