#include "client/fleet/node_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

#include "common/testing/status_matchers.h"

namespace petal::client::fleet {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ssh-keygen -t ecdsa -b 384 -N "" (a test fixture, not a secret).
constexpr char kOpenSshKey[] = R"(-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAiAAAABNlY2RzYS
1zaGEyLW5pc3RwMzg0AAAACG5pc3RwMzg0AAAAYQT1ra8CDgoP05DKYwhooyLNZLVJN91i
HyyD3ImRbzhluIhTzXnGfoBXlSnytOUXizkVKIs3+5j95JhGll9IgBL7GnHdq2zm3kElEi
C8WEVLaS2+NI7h4LOWcnAu4sy/W2oAAADQsEj9UrBI/VIAAAATZWNkc2Etc2hhMi1uaXN0
cDM4NAAAAAhuaXN0cDM4NAAAAGEE9a2vAg4KD9OQymMIaKMizWS1STfdYh8sg9yJkW84Zb
iIU815xn6AV5Up8rTlF4s5FSiLN/uY/eSYRpZfSIAS+xpx3ats5t5BJRIgvFhFS2ktvjSO
4eCzlnJwLuLMv1tqAAAAMDOI+vSSx6j3Q1QT+ImrXvbwXnR/N/7DT6/Yb38Ad8kCIzG0Iv
rB+8T50ECSzb1hSQAAAAR0ZXN0AQIDBA==
-----END OPENSSH PRIVATE KEY-----
)";
// Its public key as Python's cryptography writes it (SubjectPublicKeyInfo PEM).
constexpr char kOpenSshKeyPublicPem[] = R"(-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE9a2vAg4KD9OQymMIaKMizWS1STfdYh8s
g9yJkW84ZbiIU815xn6AV5Up8rTlF4s5FSiLN/uY/eSYRpZfSIAS+xpx3ats5t5B
JRIgvFhFS2ktvjSO4eCzlnJwLuLMv1tq
-----END PUBLIC KEY-----
)";
// ssh-keygen -t ecdsa -b 256 -N secret: passphrase-protected.
constexpr char kEncryptedOpenSshKey[] = R"(-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDtP7RGbL
VZGMmjMSL5kKMvAAAAEAAAAAEAAABoAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlz
dHAyNTYAAABBBHAzx8YcBiRhmZyBPsCbgkgRaNFu91mPl2Hx8c3mNP6P/LHhwEvjkuLe+A
mDPbVLZh9gaIZnyE5bZDgAlUmLPT4AAACg1iOlWXi5LuFATpC2L20gIxcFJYgFeRg7R1ip
6u+Tagkm29QfYPv7E9nHL0KOCklyv3lzJGzEHAGDC8zj2zGLfE+mQno1mb4Dj9enbO2+Bs
d3iNyCQMyT+xScFZO+/cAVrHz1wa/mOxl1Iy4kJJiBwkFQ+6aWYO0IVhwGJujRuyh0c4S+
GI4FzJmWoVpAbecjOrxkT2pqzxLJicItBCnXIQ==
-----END OPENSSH PRIVATE KEY-----
)";

TEST(NodeAuthTest, GeneratedKeysAreSecp384r1AndSignVerifiably) {
  PETAL_ASSERT_OK_AND_ASSIGN(NodeKey key, NodeKey::Generate());
  EXPECT_THAT(key.public_key_pem(), StartsWith("-----BEGIN PUBLIC KEY-----\n"));
  // A P-384 SubjectPublicKeyInfo is 120 bytes: 160 base64 characters.
  EXPECT_EQ(key.public_key_pem().size(), std::string("-----BEGIN PUBLIC KEY-----\n").size() + 160 +
                                             3 + std::string("-----END PUBLIC KEY-----\n").size());
  PETAL_ASSERT_OK_AND_ASSIGN(AuthMetadata auth, key.SignAt(absl::FromUnixMicros(1764059468440123)));
  EXPECT_EQ(auth.timestamp, "2025-11-25T08:31:08.440123+00:00");
  EXPECT_EQ(auth.public_key_pem, key.public_key_pem());
  EXPECT_THAT(VerifySignature(key.public_key_pem(), auth.timestamp, auth.signature),
              IsOkAndHolds(true));
  EXPECT_THAT(VerifySignature(key.public_key_pem(), auth.timestamp + "x", auth.signature),
              IsOkAndHolds(false));
  std::string broken = auth.signature;
  broken[broken.size() / 2] ^= 0x01;
  EXPECT_THAT(VerifySignature(key.public_key_pem(), auth.timestamp, broken), IsOkAndHolds(false));
  // Two keys differ.
  PETAL_ASSERT_OK_AND_ASSIGN(NodeKey other, NodeKey::Generate());
  EXPECT_NE(other.public_key_pem(), key.public_key_pem());
  EXPECT_THAT(VerifySignature(other.public_key_pem(), auth.timestamp, auth.signature),
              IsOkAndHolds(false));
}

TEST(NodeAuthTest, TimestampsFollowPythonIsoformat) {
  EXPECT_EQ(FormatTimestamp(absl::FromUnixSeconds(1760000000)), "2025-10-09T08:53:20+00:00");
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMicros(1760000000000001)),
            "2025-10-09T08:53:20.000001+00:00");
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(1760000000500)),
            "2025-10-09T08:53:20.500000+00:00");
}

TEST(NodeAuthTest, PemPrivateKeysRoundTrip) {
  PETAL_ASSERT_OK_AND_ASSIGN(NodeKey key, NodeKey::Generate());
  PETAL_ASSERT_OK_AND_ASSIGN(std::string pem, key.PrivateKeyPem());
  EXPECT_THAT(pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
  PETAL_ASSERT_OK_AND_ASSIGN(NodeKey back, NodeKey::FromPrivateKeyText(pem, "key.pem"));
  EXPECT_EQ(back.public_key_pem(), key.public_key_pem());
}

TEST(NodeAuthTest, OpenSshPrivateKeysLoadLikeFlowerSupernode) {
  PETAL_ASSERT_OK_AND_ASSIGN(NodeKey key, NodeKey::FromPrivateKeyText(kOpenSshKey, "node_key"));
  EXPECT_EQ(key.public_key_pem(), kOpenSshKeyPublicPem);
  PETAL_ASSERT_OK_AND_ASSIGN(std::string signature, key.Sign("hello"));
  EXPECT_THAT(VerifySignature(kOpenSshKeyPublicPem, "hello", signature), IsOkAndHolds(true));
}

TEST(NodeAuthTest, UnusableKeysAreRejectedWithTheirSource) {
  EXPECT_THAT(NodeKey::FromPrivateKeyText(kEncryptedOpenSshKey, "enc_key"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("enc_key: OpenSSH private key: encrypted")));
  EXPECT_THAT(NodeKey::FromPrivateKeyText("not a key", "junk.pem"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("junk.pem")));
  std::string damaged = kOpenSshKey;
  damaged.replace(damaged.find("b3Bl"), 4, "AAAA");
  EXPECT_THAT(NodeKey::FromPrivateKeyText(damaged, "damaged"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("damaged")));
  // An RSA key is not what Flower accepts.
  EVP_PKEY* rsa = EVP_RSA_gen(1024);
  ASSERT_NE(rsa, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, rsa, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(rsa);
  EXPECT_THAT(NodeKey::FromPrivateKeyText(pem, "rsa.pem"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an elliptic-curve key")));
  EXPECT_THAT(NodeKey::LoadPrivateKeyFile("/nonexistent/petal/key"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(NodeAuthTest, Base64MatchesRfc4648) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode(std::string("\xff\x00\x10", 3)), "/wAQ");
}

}  // namespace
}  // namespace petal::client::fleet
