// File: internal/http_client.h
//
// A small HTTP/1.1 client for the Fleet API's protobuf-over-HTTP binding:
// POST requests with a Content-Length body over plain TCP or TLS (OpenSSL),
// persistent connections, absolute deadlines, and prompt cancellation of
// in-flight requests. Responses may be Content-Length, chunked or
// close-delimited. Not a general-purpose client: no redirects, no proxies, no
// compression, no pipelining.
//
//   PETAL_ASSIGN_OR_RETURN(auto client, HttpClient::Create(endpoint));
//   PETAL_ASSIGN_OR_RETURN(HttpResponse r, client->Post("/v1/fleet/pull-messages", headers, body,
//                                                       absl::Now() + absl::Seconds(30)));
//
// Errors: Unavailable when the server cannot be reached or drops the
// connection mid-response, DeadlineExceeded at the deadline, Cancelled after
// CancelInFlight(), InvalidArgument when the peer does not speak HTTP/1.1
// (e.g. a gRPC-only server), ResourceExhausted when a body exceeds the limit.
// Thread-safe: concurrent requests use separate pooled connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace petal::client::fleet::internal {

struct HttpEndpoint {
  std::string host;  // name or address, without brackets
  int port = 0;
  bool tls = false;
  // PEM trust anchors for TLS; empty = the system's default trust store.
  std::string root_certificates_pem;
  // Longest a new connection (TCP + TLS handshake) may take, within the
  // request's deadline.
  absl::Duration connect_timeout = absl::Seconds(20);
};

// Splits "host:port" or "[v6]:port". InvalidArgument for anything else.
absl::StatusOr<std::pair<std::string, int>> ParseHostPort(std::string_view address);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  std::string reason;
  HttpHeaders headers;  // names lower-cased
  std::string body;
  // The first header named `name` (lower-case), or null.
  const std::string* Header(std::string_view name) const;
};

// Incremental parser of one HTTP/1.1 response (exposed for tests).
class HttpResponseParser {
 public:
  explicit HttpResponseParser(size_t max_body);

  // Consumes received bytes. Returns true once the response is complete.
  // InvalidArgument for a malformed response (naming what is wrong),
  // ResourceExhausted when the head or body exceeds its limit, and
  // InvalidArgument if bytes follow a complete response.
  absl::StatusOr<bool> Feed(std::string_view data);
  // The peer closed the connection: completes a close-delimited body;
  // Unavailable if the response was cut short.
  absl::StatusOr<bool> FeedEof();

  // Some byte of the response has arrived.
  bool started() const { return started_; }
  // The connection may carry another request afterwards.
  bool keep_alive() const { return keep_alive_; }
  HttpResponse& response() { return response_; }

 private:
  enum class State {
    kHead,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kUntilEof,
    kDone
  };
  absl::Status ParseHead(std::string_view head);
  absl::StatusOr<bool> Process();

  size_t max_body_;
  State state_ = State::kHead;
  std::string buffer_;    // unconsumed bytes
  size_t remaining_ = 0;  // of the body or current chunk
  bool started_ = false;
  bool keep_alive_ = true;
  HttpResponse response_;
};

class HttpClient {
 public:
  // Creates the TLS context (loading the trust anchors) when endpoint.tls.
  // InvalidArgument for unusable certificates.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(HttpEndpoint endpoint,
                                                            size_t max_body = size_t{1} << 31);
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  // Sends one POST and waits for its response until `deadline`. A request
  // that fails on a reused connection before any response byte arrived (the
  // server closed it while idle) is sent once more on a fresh connection.
  absl::StatusOr<HttpResponse> Post(std::string_view path, const HttpHeaders& headers,
                                    std::string_view body, absl::Time deadline);

  // Aborts every request in flight now (they return Cancelled); later
  // requests are unaffected.
  void CancelInFlight();

  const HttpEndpoint& endpoint() const { return endpoint_; }

 private:
  class Connection;
  HttpClient(HttpEndpoint endpoint, size_t max_body, SSL_CTX* ssl_ctx);

  absl::StatusOr<std::unique_ptr<Connection>> Acquire(absl::Time deadline, uint64_t generation,
                                                      bool* reused);
  void Release(std::unique_ptr<Connection> connection);
  absl::StatusOr<HttpResponse> Attempt(Connection& connection, const std::string& request,
                                       absl::Time deadline, bool* response_started);

  HttpEndpoint endpoint_;
  size_t max_body_;
  SSL_CTX* ssl_ctx_ = nullptr;  // owned; null for plain TCP

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  std::vector<Connection*> busy_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace petal::client::fleet::internal
