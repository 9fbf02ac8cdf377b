#include "client/connection_config.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>

#include "absl/strings/numbers.h"

namespace petal::client {
namespace {

std::string Key(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : fmt::format("{}.{}", prefix, name);
}

std::optional<absl::Duration> ParseDurationText(const std::string& text) {
  absl::Duration d;
  if (absl::ParseDuration(text, &d)) return d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds)) return absl::Seconds(seconds);
  return std::nullopt;
}

void ReadDuration(common::ConfigReader& r, const std::string& key, absl::Duration* out) {
  if (!r.Has(key)) {
    r.Consume(key);
    return;
  }
  std::string text;
  r.Read(key, &text);
  std::optional<absl::Duration> d = ParseDurationText(text);
  if (!d.has_value()) {
    r.Fail(key,
           fmt::format("'{}' is not a duration (e.g. 500ms, 20s, 10m, inf, or seconds)", text));
    return;
  }
  if (*d < absl::ZeroDuration()) {
    r.Fail(key, fmt::format("must not be negative (got {})", text));
    return;
  }
  *out = *d;
}

}  // namespace

void ReadConnectionOptions(common::ConfigReader& r, const std::string& prefix,
                           ConnectionOptions* out) {
  r.Read(Key(prefix, "address"), &out->server_address);
  std::string transport(TransportKindName(out->transport));
  r.Read(Key(prefix, "transport"), &transport, common::OneOf({"grpc-bidi", "grpc-rere"}));
  if (absl::StatusOr<TransportKind> kind = ParseTransportKind(transport); kind.ok()) {
    out->transport = *kind;
  }
  r.Read(Key(prefix, "root_certificates"), &out->root_certificates);
  if (r.Has(Key(prefix, "insecure"))) {
    bool insecure = false;
    r.Read(Key(prefix, "insecure"), &insecure);
    out->insecure = insecure;
  } else {
    r.Consume(Key(prefix, "insecure"));
  }
  r.Read(Key(prefix, "max_message_length"), &out->max_message_length,
         common::InRange<int64_t>(1, kFlowerMaxMessageLength));
  ReadDuration(r, Key(prefix, "connect_timeout"), &out->connect_timeout);
  ReadDuration(r, Key(prefix, "disconnect_grace"), &out->disconnect_grace);

  const std::string retry = Key(prefix, "retry");
  ReadDuration(r, Key(retry, "initial_backoff"), &out->retry.initial_backoff);
  r.Read(Key(retry, "multiplier"), &out->retry.multiplier, common::AtLeast<double>(1.0));
  ReadDuration(r, Key(retry, "max_backoff"), &out->retry.max_backoff);
  r.Read(Key(retry, "jitter"), &out->retry.jitter, common::InRange<double>(0.0, 1.0));
  r.Read(Key(retry, "max_attempts"), &out->retry.max_attempts, common::AtLeast<int64_t>(0));
  ReadDuration(r, Key(retry, "max_elapsed"), &out->retry.max_elapsed);

  if (absl::Status s = out->Validate(); !s.ok()) r.Fail(prefix, std::string(s.message()));
}

}  // namespace petal::client
