#include "client/fleet/node_auth.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/status_macros.h"

namespace petal::client::fleet {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The OpenSSL error queue as text (and cleared).
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error recorded" : out;
}

absl::StatusOr<std::string> PublicKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return absl::InternalError("cannot write the public key as PEM: " + OpenSslErrors());
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::Status CheckEcKey(EVP_PKEY* key, std::string_view source) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: not an elliptic-curve key (Flower's SuperNode keys are EC, e.g. SECP384R1)", source));
  }
  return absl::OkStatus();
}

// --- OpenSSH private keys ("openssh-key-v1") --------------------------------

class SshReader {
 public:
  explicit SshReader(std::string_view data) : data_(data) {}
  bool U32(uint32_t* out) {
    if (data_.size() < 4) return false;
    *out = (uint32_t{static_cast<unsigned char>(data_[0])} << 24) |
           (uint32_t{static_cast<unsigned char>(data_[1])} << 16) |
           (uint32_t{static_cast<unsigned char>(data_[2])} << 8) |
           uint32_t{static_cast<unsigned char>(data_[3])};
    data_.remove_prefix(4);
    return true;
  }
  bool String(std::string_view* out) {
    uint32_t size = 0;
    if (!U32(&size) || data_.size() < size) return false;
    *out = data_.substr(0, size);
    data_.remove_prefix(size);
    return true;
  }
  bool Magic(std::string_view magic) {
    if (data_.substr(0, magic.size()) != magic) return false;
    data_.remove_prefix(magic.size());
    return true;
  }

 private:
  std::string_view data_;
};

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  std::string clean;
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') clean.push_back(c);
  }
  if (clean.size() % 4 != 0) return absl::InvalidArgumentError("base64 text has a bad length");
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return absl::InvalidArgumentError("invalid base64 text");
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

absl::StatusOr<PkeyPtr> ParseOpenSshPrivateKey(std::string_view text, std::string_view source) {
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
  size_t begin = text.find(kBegin);
  size_t end = text.find(kEnd);
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("{}: OpenSSH private key: {}", source, why));
  };
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) {
    return bad("missing BEGIN/END lines");
  }
  absl::StatusOr<std::string> blob =
      Base64Decode(text.substr(begin + kBegin.size(), end - begin - kBegin.size()));
  if (!blob.ok()) return bad(std::string(blob.status().message()));
  SshReader r(*blob);
  std::string_view cipher, kdf, kdf_options, public_blob, private_section;
  uint32_t count = 0;
  if (!r.Magic(std::string_view("openssh-key-v1\0", 15)) || !r.String(&cipher) || !r.String(&kdf) ||
      !r.String(&kdf_options) || !r.U32(&count) || !r.String(&public_blob) ||
      !r.String(&private_section)) {
    return bad("truncated or not an openssh-key-v1 blob");
  }
  if (cipher != "none" || kdf != "none")
    return bad("encrypted keys are not supported (remove the passphrase)");
  if (count != 1) return bad("expected exactly one key");
  SshReader p(private_section);
  uint32_t check1 = 0, check2 = 0;
  std::string_view key_type, curve, q, d;
  if (!p.U32(&check1) || !p.U32(&check2) || check1 != check2 || !p.String(&key_type)) {
    return bad("damaged private section");
  }
  if (key_type.rfind("ecdsa-sha2-", 0) != 0) {
    return bad(fmt::format("key type '{}' is not ECDSA (Flower needs an EC key)", key_type));
  }
  if (!p.String(&curve) || !p.String(&q) || !p.String(&d)) return bad("damaged ECDSA key fields");
  const char* group = nullptr;
  if (curve == "nistp256") group = "prime256v1";
  if (curve == "nistp384") group = "secp384r1";
  if (curve == "nistp521") group = "secp521r1";
  if (group == nullptr) return bad(fmt::format("unsupported curve '{}'", curve));

  std::unique_ptr<BIGNUM, BnFree> priv(BN_bin2bn(reinterpret_cast<const unsigned char*>(d.data()),
                                                 static_cast<int>(d.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!priv || !bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, q.data(), q.size()) !=
          1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1) {
    return absl::InternalError("cannot build EC key parameters: " + OpenSslErrors());
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()) != 1) {
    return bad("the key's numbers do not form a valid EC key: " + OpenSslErrors());
  }
  PkeyPtr owned(key);
  // The public point must belong to the private scalar.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(EVP_PKEY_CTX_new(owned.get(), nullptr));
  if (!check || EVP_PKEY_pairwise_check(check.get()) != 1) {
    ERR_clear_error();
    return bad("the public and private parts do not match");
  }
  return owned;
}

}  // namespace

NodeKey::NodeKey(EVP_PKEY* key, std::string public_key_pem)
    : key_(key), public_key_pem_(std::move(public_key_pem)) {}

NodeKey::NodeKey(NodeKey&& other) noexcept
    : key_(std::exchange(other.key_, nullptr)), public_key_pem_(std::move(other.public_key_pem_)) {}

NodeKey& NodeKey::operator=(NodeKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(key_);
    key_ = std::exchange(other.key_, nullptr);
    public_key_pem_ = std::move(other.public_key_pem_);
  }
  return *this;
}

NodeKey::~NodeKey() { EVP_PKEY_free(key_); }

absl::StatusOr<NodeKey> NodeKey::Generate() {
  PkeyPtr key(EVP_EC_gen("secp384r1"));
  if (!key) return absl::InternalError("cannot generate an EC key: " + OpenSslErrors());
  PETAL_ASSIGN_OR_RETURN(std::string pem, PublicKeyPem(key.get()));
  return NodeKey(key.release(), std::move(pem));
}

absl::StatusOr<NodeKey> NodeKey::FromPrivateKeyText(std::string_view text,
                                                    std::string_view source) {
  PkeyPtr key;
  if (text.find("-----BEGIN OPENSSH PRIVATE KEY-----") != std::string_view::npos) {
    PETAL_ASSIGN_OR_RETURN(key, ParseOpenSshPrivateKey(text, source));
  } else {
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    // An empty passphrase callback result makes encrypted PEM fail instead of prompting.
    key.reset(PEM_read_bio_PrivateKey(
        bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
    if (!key) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: not an unencrypted PEM or OpenSSH private key ({})", source, OpenSslErrors()));
    }
  }
  PETAL_RETURN_IF_ERROR(CheckEcKey(key.get(), source));
  PETAL_ASSIGN_OR_RETURN(std::string pem, PublicKeyPem(key.get()));
  return NodeKey(key.release(), std::move(pem));
}

absl::StatusOr<NodeKey> NodeKey::LoadPrivateKeyFile(const std::string& path) {
  PETAL_ASSIGN_OR_RETURN(std::string text, common::ReadFileToString(path));
  return FromPrivateKeyText(text, path);
}

absl::StatusOr<std::string> NodeKey::PrivateKeyPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError("cannot write the private key as PEM: " + OpenSslErrors());
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> NodeKey::Sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::InternalError("cannot sign: " + OpenSslErrors());
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::InternalError("cannot sign: " + OpenSslErrors());
  }
  signature.resize(size);
  return signature;
}

absl::StatusOr<AuthMetadata> NodeKey::SignAt(absl::Time now) const {
  AuthMetadata out;
  out.public_key_pem = public_key_pem_;
  out.timestamp = FormatTimestamp(now);
  PETAL_ASSIGN_OR_RETURN(out.signature, Sign(out.timestamp));
  return out;
}

std::string FormatTimestamp(absl::Time time) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  int64_t micros = absl::ToUnixMicros(time) % 1'000'000;
  if (micros < 0) micros += 1'000'000;
  if (micros == 0) return absl::FormatTime("%Y-%m-%dT%H:%M:%S+00:00", time, utc);
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6S+00:00", time, utc);
}

absl::StatusOr<bool> VerifySignature(std::string_view public_key_pem, std::string_view message,
                                     std::string_view signature) {
  BioPtr bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return absl::InvalidArgumentError("not a PEM public key: " + OpenSslErrors());
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return absl::InternalError("cannot verify: " + OpenSslErrors());
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace petal::client::fleet
