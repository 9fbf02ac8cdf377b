#include "client/connection_config.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::client {
namespace {

using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<ConnectionOptions> Read(const std::string& yaml_text) {
  absl::StatusOr<common::YamlConfig> yaml = common::YamlConfig::Parse(yaml_text, "client.yaml");
  if (!yaml.ok()) return yaml.status();
  common::ConfigReader reader(*yaml);
  ConnectionOptions options;
  ReadConnectionOptions(reader, "server", &options);
  if (absl::Status s = reader.Finish(); !s.ok()) return s;
  return options;
}

TEST(ConnectionConfigTest, ReadsEveryKey) {
  PETAL_ASSERT_OK_AND_ASSIGN(ConnectionOptions o, Read(R"(
server:
  address: 10.0.0.1:9000
  transport: grpc-rere
  root_certificates: /etc/ca.pem
  max_message_length: 1000000
  connect_timeout: 500ms
  disconnect_grace: 3
  retry:
    initial_backoff: 0.25s
    multiplier: 3
    max_backoff: 1m
    jitter: 1.0
    max_attempts: 9
    max_elapsed: inf
)"));
  EXPECT_EQ(o.server_address, "10.0.0.1:9000");
  EXPECT_EQ(o.transport, TransportKind::kGrpcRere);
  EXPECT_EQ(o.root_certificates, "/etc/ca.pem");
  EXPECT_FALSE(o.insecure.has_value());
  EXPECT_EQ(o.max_message_length, 1000000);
  EXPECT_EQ(o.connect_timeout, absl::Milliseconds(500));
  EXPECT_EQ(o.disconnect_grace, absl::Seconds(3));
  EXPECT_EQ(o.retry.initial_backoff, absl::Milliseconds(250));
  EXPECT_EQ(o.retry.multiplier, 3.0);
  EXPECT_EQ(o.retry.max_backoff, absl::Minutes(1));
  EXPECT_EQ(o.retry.jitter, 1.0);
  EXPECT_EQ(o.retry.max_attempts, 9);
  EXPECT_EQ(o.retry.max_elapsed, absl::InfiniteDuration());
}

TEST(ConnectionConfigTest, AbsentKeysKeepTheDefaults) {
  PETAL_ASSERT_OK_AND_ASSIGN(ConnectionOptions o,
                             Read("server: {address: 'h:1', insecure: true}\n"));
  EXPECT_EQ(o.server_address, "h:1");
  EXPECT_EQ(o.insecure, std::optional<bool>(true));
  EXPECT_EQ(o.max_message_length, kFlowerMaxMessageLength);
  EXPECT_EQ(o.retry.max_elapsed, absl::Minutes(10));
}

TEST(ConnectionConfigTest, ErrorsNameTheFileLineAndKey) {
  EXPECT_THAT(Read("server:\n  connect_timeout: soon\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("client.yaml:2: key 'server.connect_timeout': 'soon' is not a "
                                 "duration")));
  EXPECT_THAT(Read("server:\n  transport: rest\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.transport")));
  EXPECT_THAT(Read("server:\n  retry: {jitter: 2}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.retry.jitter")));
  EXPECT_THAT(Read("server:\n  max_message_length: 0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.max_message_length")));
  EXPECT_THAT(Read("server:\n  retry: {initial_backoff: -1s}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must not be negative")));
  EXPECT_THAT(Read("server:\n  insecure: true\n  root_certificates: ca.pem\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("insecure is true")));
  EXPECT_THAT(Read("server:\n  retry: {max_attempts: 0, max_elapsed: inf}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unbounded")));
  EXPECT_THAT(Read("server:\n  adress: x:1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.adress")));
}

}  // namespace
}  // namespace petal::client
