// File: node_auth.h
//
// A SuperNode's identity on the Fleet API: an elliptic-curve key pair and the
// signed metadata every Fleet call carries.
//
//   PETAL_ASSIGN_OR_RETURN(NodeKey key, NodeKey::Generate());
//   std::string pem = key.public_key_pem();      // RegisterNode/ActivateNode
//   PETAL_ASSIGN_OR_RETURN(AuthMetadata auth, key.SignNow());
//   // gRPC: flwr-public-key-bin / flwr-timestamp / flwr-signature-bin (raw bytes)
//   // HTTP: flwr-public-key / flwr-timestamp / flwr-signature (base64)
//
// Facts (flwr 1.42, supercore/primitives/asymmetric.py and the Fleet auth
// interceptors): Flower generates SECP384R1 keys; the public key travels as
// PEM SubjectPublicKeyInfo; the signature is ECDSA-SHA256 (DER) over the ASCII
// ISO-8601 timestamp with microseconds and a "+00:00" offset, which the
// SuperLink accepts when -5 s < its clock - timestamp < 305 s.
// Uses OpenSSL 3 (libcrypto). NodeKey is immutable after creation and
// thread-safe to share; signing uses no shared mutable state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace petal::client::fleet {

// What one call carries.
struct AuthMetadata {
  std::string public_key_pem;  // PEM SubjectPublicKeyInfo (bytes as sent on gRPC)
  std::string timestamp;       // "2026-11-25T08:21:08.440123+00:00"
  std::string signature;       // DER ECDSA-SHA256 over `timestamp`
};

class NodeKey {
 public:
  // A fresh SECP384R1 key, like a self-registering Flower SuperNode's.
  // Internal if OpenSSL fails.
  static absl::StatusOr<NodeKey> Generate();
  // Loads an EC private key: PEM ("BEGIN PRIVATE KEY" PKCS#8 or "BEGIN EC
  // PRIVATE KEY") or an unencrypted OpenSSH private key ("BEGIN OPENSSH
  // PRIVATE KEY", what flower-supernode's --auth-supernode-private-key takes).
  // InvalidArgument naming `source` for anything else (other key types,
  // encrypted keys, damaged files).
  static absl::StatusOr<NodeKey> FromPrivateKeyText(std::string_view text, std::string_view source);
  // Reads the file at `path` and parses it as above; NotFound if it is missing.
  static absl::StatusOr<NodeKey> LoadPrivateKeyFile(const std::string& path);

  NodeKey(NodeKey&&) noexcept;
  NodeKey& operator=(NodeKey&&) noexcept;
  NodeKey(const NodeKey&) = delete;
  NodeKey& operator=(const NodeKey&) = delete;
  ~NodeKey();

  const std::string& public_key_pem() const { return public_key_pem_; }
  // PKCS#8 PEM of the private key (to persist a generated key).
  absl::StatusOr<std::string> PrivateKeyPem() const;

  // DER ECDSA-SHA256 signature of `message`.
  absl::StatusOr<std::string> Sign(std::string_view message) const;
  // Signs FormatTimestamp(now).
  absl::StatusOr<AuthMetadata> SignAt(absl::Time now) const;
  absl::StatusOr<AuthMetadata> SignNow() const { return SignAt(absl::Now()); }

 private:
  NodeKey(EVP_PKEY* key, std::string public_key_pem);
  EVP_PKEY* key_ = nullptr;  // owned
  std::string public_key_pem_;
};

// Python's datetime.now(timezone.utc).isoformat(): "YYYY-MM-DDTHH:MM:SS.ffffff+00:00"
// (the fraction is omitted when the microseconds are zero, as Python does).
std::string FormatTimestamp(absl::Time time);

// True if `signature` (DER) is a valid ECDSA-SHA256 signature of `message` by
// the PEM public key. For tests and diagnostics.
absl::StatusOr<bool> VerifySignature(std::string_view public_key_pem, std::string_view message,
                                     std::string_view signature);

// Standard base64 with padding (what the Fleet HTTP headers use).
std::string Base64Encode(std::string_view bytes);

}  // namespace petal::client::fleet
