// File: connection_config.h
//
// ConnectionOptions from a YAML section, for applications built on the SDK
// (petal-client reads its `server:` section with it):
//
//   server:
//     address: 127.0.0.1:8080
//     transport: grpc-bidi          # grpc-bidi (start_server) | grpc-rere (SuperLink)
//     root_certificates: ""         # PEM file for TLS ("" = plaintext)
//     insecure: false               # optional; see ConnectionOptions::insecure
//     max_message_length: 2147483647
//     connect_timeout: 20s
//     disconnect_grace: 2s
//     retry: {initial_backoff: 1s, multiplier: 2, max_backoff: 20s, jitter: 0.5,
//             max_attempts: 0, max_elapsed: 10m}
//
// Durations are absl durations ("500ms", "20s", "10m", "inf") or plain numbers
// of seconds. Errors are recorded in the reader, naming file:line and key.
#pragma once

#include <string>

#include "client/transport.h"
#include "common/config.h"

namespace petal::client {

// Reads the keys under `prefix` into *out (absent keys keep their values) and
// records a cross-field error (ConnectionOptions::Validate) at `prefix`.
void ReadConnectionOptions(common::ConfigReader& reader, const std::string& prefix,
                           ConnectionOptions* out);

}  // namespace petal::client
