"""Faults between Petal C++ clients and a real Flower server.

Run by ctest.
- The server dies in the middle of round 2 (after the fit replies arrived,
  before aggregation). The clients see the stream break, retry with backoff
  while nothing listens, and join a new Flower server started on the same
  port, which then runs a complete federation with them.
- TLS: a CA and a server certificate generated here (Python cryptography);
  Flower's server runs with them, clients given the CA join over TLS and
  finish the run; a client without the CA, or trusting another CA, cannot
  connect and gives up with exit code 2 after its bounded retries.
"""

import datetime
import ipaddress
import os
import sys
import unittest

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client_harness as h  # noqa: E402


def write_pem(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_ca(workdir, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = write_pem(os.path.join(workdir, f"{name}.pem"),
                     cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def make_server_cert(workdir, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path = write_pem(os.path.join(workdir, "server.crt"),
                          cert.public_bytes(serialization.Encoding.PEM))
    key_path = write_pem(os.path.join(workdir, "server.key"), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


class FaultTest(h.FlowerFederationTest):
    def test_server_dies_mid_round_and_clients_join_a_new_server_on_the_same_port(self):
        port = h.free_port()
        spec = {"port": port, "strategy": "fedavg", "rounds": 3, "min_clients": 2,
                "fit_config": {"lr": 0.25, "local_epochs": 1}}
        first, first_out = h.start_server(self.work.path, "server1", dict(spec, die_in_round=2))
        self.procs.append(first)
        h.wait_listening(port, first)
        clients = [("cpp-a", 1.0, 10), ("cpp-b", 5.0, 30)]
        for name, target, n in clients:
            self.procs.append(h.start_quadratic_client(self.work.path, name, port, target, n,
                                                       shapes="4"))
        self.assertEqual(first.wait(h.RUN_TIMEOUT), 17, first.output())
        self.assertIn("DYING", first.output())
        seen = h.read_json(first_out)
        self.assertEqual(len(seen["rounds"]["2"]["fit_results"]), 2)

        # Nothing listens now: both clients must be retrying (not exiting).
        for p in self.procs[1:]:
            self.assertTrue(p.wait_for_output("lost the connection", 30), p.output())
            self.assertTrue(p.wait_for_output("cannot reach the server", 30), p.output())
            self.assertTrue(p.wait_for_output("; retry 2 in", 30), p.output())
            self.assertIsNone(p.poll(), p.output())

        second, second_out = h.start_server(self.work.path, "server2", spec)
        self.procs.append(second)
        self.assertEqual(second.wait(h.RUN_TIMEOUT), 0, second.output())
        for p in self.procs[1:3]:
            self.assertEqual(p.wait(60), 0, f"{p.name}:\n{p.output()}")
        out = h.read_json(second_out)
        self.assertEqual(len(out["registrations"]), 2)
        initial = [np.zeros((4,), dtype=np.float32)]
        losses = self.check_rounds(out, clients, [(4,)], np.float32, 0.25, 1, 0.0, initial)
        self.assertEqual(len(losses), 3)
        for name, _, _ in clients:
            stats = h.client_stats(self.work.path, name)
            self.assertEqual(stats["status"], "OK")
            self.assertEqual(stats["sessions"], 2)
            # First session, then at least one refused attempt ("retry 2" was
            # logged after one), then the session with the new server.
            self.assertGreaterEqual(stats["connect_attempts"], 3)

    def test_tls_with_a_self_signed_ca(self):
        ca_key, ca_cert, ca_path = make_ca(self.work.path, "test-ca")
        _, _, other_ca_path = make_ca(self.work.path, "other-ca")
        cert_path, key_path = make_server_cert(self.work.path, ca_key, ca_cert)
        port = h.free_port()
        spec = {"port": port, "strategy": "fedavg", "rounds": 2, "min_clients": 2,
                "fit_config": {"lr": 0.5, "local_epochs": 1},
                "certificates": [ca_path, cert_path, key_path]}
        server, out_path = h.start_server(self.work.path, "server", spec)
        self.procs.append(server)
        h.wait_listening(port, server)

        # Plaintext against TLS, and TLS trusting the wrong CA: both give up.
        bounded = ["--max-attempts", "3", "--initial-backoff", "50ms", "--max-backoff", "100ms"]
        rejected = [
            h.start_quadratic_client(self.work.path, "plaintext", port, 0.0, 1, shapes="4",
                                     extra=bounded),
            h.start_quadratic_client(self.work.path, "wrong-ca", port, 0.0, 1, shapes="4",
                                     extra=bounded + ["--root-certificates", other_ca_path]),
        ]
        self.procs.extend(rejected)
        for p in rejected:
            self.assertEqual(p.wait(60), 2, p.output())
            self.assertIn("giving up on 127.0.0.1", p.output())
        self.assertIn("certificate verify failed", rejected[1].output())

        clients = [("tls-a", 2.0, 10), ("tls-b", -2.0, 30)]
        for name, target, n in clients:
            self.procs.append(h.start_quadratic_client(
                self.work.path, name, port, target, n, shapes="4",
                extra=["--root-certificates", ca_path]))
        self.assertEqual(server.wait(h.RUN_TIMEOUT), 0, server.output())
        for p in self.procs[-2:]:
            self.assertEqual(p.wait(60), 0, p.output())
            self.assertIn("(grpc-bidi, TLS)", p.output())
        out = h.read_json(out_path)
        self.assertEqual(len(out["registrations"]), 2)
        self.check_rounds(out, clients, [(4,)], np.float32, 0.5, 1, 0.0,
                          [np.zeros((4,), dtype=np.float32)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
