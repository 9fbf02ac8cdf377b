#include "client/fleet/internal/http_client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/status_matchers.h"

namespace petal::client::fleet::internal {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

// --- parser -----------------------------------------------------------------------

absl::StatusOr<HttpResponse> ParseAll(std::string_view bytes, size_t step = 0, bool eof = false,
                                      size_t max_body = 1 << 20) {
  HttpResponseParser parser(max_body);
  if (step == 0) step = bytes.size();
  bool complete = false;
  for (size_t i = 0; i < bytes.size(); i += step) {
    absl::StatusOr<bool> r = parser.Feed(bytes.substr(i, step));
    if (!r.ok()) return r.status();
    complete = *r;
  }
  if (eof) {
    absl::StatusOr<bool> r = parser.FeedEof();
    if (!r.ok()) return r.status();
    complete = *r;
  }
  if (!complete) return absl::UnavailableError("incomplete");
  return std::move(parser.response());
}

TEST(HttpResponseParserTest, ContentLengthInAnyPieces) {
  const std::string r =
      "HTTP/1.1 200 OK\r\ncontent-type: application/protobuf\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t step : {0, 1, 3, 7}) {
    PETAL_ASSERT_OK_AND_ASSIGN(HttpResponse resp, ParseAll(r, step));
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(resp.reason, "OK");
    EXPECT_EQ(resp.body, "hello");
    ASSERT_NE(resp.Header("content-type"), nullptr);
    EXPECT_EQ(*resp.Header("content-type"), "application/protobuf");
  }
}

TEST(HttpResponseParserTest, ChunkedWithExtensionsAndTrailers) {
  const std::string r =
      "HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\n{\"co\r\n7\r\nde\": 1}\r\n0\r\nX-Trailer: y\r\n\r\n";
  for (size_t step : {0, 1, 5}) {
    PETAL_ASSERT_OK_AND_ASSIGN(HttpResponse resp, ParseAll(r, step));
    EXPECT_EQ(resp.status, 401);
    EXPECT_EQ(resp.body, "{\"code\": 1}");
  }
}

TEST(HttpResponseParserTest, CloseDelimitedBodyAndKeepAliveRules) {
  HttpResponseParser p(100);
  EXPECT_THAT(p.Feed("HTTP/1.0 200 OK\r\n\r\nabc"), IsOkAndHolds(false));
  EXPECT_THAT(p.FeedEof(), IsOkAndHolds(true));
  EXPECT_EQ(p.response().body, "abc");
  EXPECT_FALSE(p.keep_alive());

  HttpResponseParser close(100);
  EXPECT_THAT(close.Feed("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"),
              IsOkAndHolds(true));
  EXPECT_FALSE(close.keep_alive());
  HttpResponseParser keep(100);
  EXPECT_THAT(keep.Feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), IsOkAndHolds(true));
  EXPECT_TRUE(keep.keep_alive());
}

TEST(HttpResponseParserTest, InformationalResponsesAreSkipped) {
  PETAL_ASSERT_OK_AND_ASSIGN(
      HttpResponse resp,
      ParseAll("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "x");
}

TEST(HttpResponseParserTest, MalformedResponsesAreErrorsNotCrashes) {
  EXPECT_THAT(ParseAll(std::string("\x00\x00\x12\x04\x00\x00\x00\x00\x00", 9)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not speak HTTP/1.1")));
  EXPECT_THAT(ParseAll("HTTP/1.1 2x0 OK\r\n\r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("status line")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nbroken header\r\n\r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header line")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Content-Length")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("conflicting")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk size")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CRLF")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("after the HTTP response")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 0, false, 10),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n", 0, false, 10),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a')),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("64 KiB")));
  EXPECT_THAT(ParseAll("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, /*eof=*/true),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("middle of its response")));
  EXPECT_THAT(ParseAll("", 0, /*eof=*/true),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("without answering")));
}

TEST(HttpHostPortTest, ParsesHostsAndBracketedV6) {
  EXPECT_THAT(ParseHostPort("127.0.0.1:8000"),
              IsOkAndHolds(std::make_pair(std::string("127.0.0.1"), 8000)));
  EXPECT_THAT(ParseHostPort("superlink.example:443"),
              IsOkAndHolds(std::make_pair(std::string("superlink.example"), 443)));
  EXPECT_THAT(ParseHostPort("[::1]:9092"), IsOkAndHolds(std::make_pair(std::string("::1"), 9092)));
  for (const char* bad :
       {"localhost", ":80", "host:", "host:0", "host:65536", "::1:80", "[::1]80", "h:8x"}) {
    EXPECT_THAT(ParseHostPort(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

// --- client against a scripted loopback server -------------------------------------

// Accepts connections on 127.0.0.1:0 and runs `handler` for each on its own
// thread. The handler gets the socket and the parsed request count so far.
class LoopbackServer {
 public:
  using Handler = std::function<void(int fd, int connection_index)>;
  explicit LoopbackServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~LoopbackServer() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }

  // Reads one request (head + Content-Length body); false on EOF.
  static bool ReadRequest(int fd, std::string* request) {
    std::string buf;
    char chunk[4096];
    while (true) {
      size_t head_end = buf.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = buf.find("Content-Length: ");
        size_t length = cl == std::string::npos ? 0 : std::stoul(buf.substr(cl + 16));
        if (buf.size() >= head_end + 4 + length) {
          *request = buf;
          return true;
        }
      }
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
    }
  }
  static void Send(int fd, std::string_view data) {
    send(fd, data.data(), data.size(), MSG_NOSIGNAL);
  }

 private:
  void Accept() {
    while (!stopping_) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      int index = connections_++;
      workers_.emplace_back([this, fd, index] {
        handler_(fd, index);
        close(fd);
      });
    }
  }
  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

std::unique_ptr<HttpClient> ClientFor(int port) {
  HttpEndpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = port;
  return *HttpClient::Create(endpoint);
}

TEST(HttpClientTest, PostsAndReusesTheConnection) {
  std::vector<std::string> requests;
  std::mutex mu;
  LoopbackServer server([&](int fd, int) {
    std::string request;
    while (LoopbackServer::ReadRequest(fd, &request)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        requests.push_back(request);
      }
      LoopbackServer::Send(
          fd,
          "HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\nContent-Length: 3\r\n\r\nabc");
    }
  });
  auto client = ClientFor(server.port());
  for (int i = 0; i < 3; ++i) {
    PETAL_ASSERT_OK_AND_ASSIGN(HttpResponse resp,
                               client->Post("/v1/fleet/pull-messages", {{"flwr-timestamp", "t"}},
                                            "body", absl::Now() + absl::Seconds(5)));
    EXPECT_EQ(resp.body, "abc");
  }
  EXPECT_EQ(server.connections(), 1);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_THAT(requests[0], ::testing::StartsWith("POST /v1/fleet/pull-messages HTTP/1.1\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("Content-Length: 4\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("flwr-timestamp: t\r\n"));
  EXPECT_THAT(requests[0], ::testing::EndsWith("\r\n\r\nbody"));
}

TEST(HttpClientTest, RetriesOnceWhenAnIdleConnectionWasClosed) {
  // The first connection answers one request, then closes without answering
  // the next; the client must resend on a fresh connection.
  LoopbackServer server([&](int fd, int index) {
    std::string request;
    if (!LoopbackServer::ReadRequest(fd, &request)) return;
    if (index == 0) {
      LoopbackServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
      LoopbackServer::ReadRequest(fd, &request);  // read it, then hang up silently
      return;
    }
    LoopbackServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
  });
  auto client = ClientFor(server.port());
  EXPECT_THAT(client->Post("/a", {}, "", absl::Now() + absl::Seconds(5)), ::petal::testing::IsOk());
  PETAL_ASSERT_OK_AND_ASSIGN(HttpResponse second,
                             client->Post("/b", {}, "", absl::Now() + absl::Seconds(5)));
  EXPECT_EQ(second.body, "2");
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, HangingServerHitsTheDeadline) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  LoopbackServer server([&](int fd, int) {
    std::string request;
    LoopbackServer::ReadRequest(fd, &request);
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
  });
  auto client = ClientFor(server.port());
  absl::Time start = absl::Now();
  EXPECT_THAT(client->Post("/x", {}, "", absl::Now() + absl::Milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST(HttpClientTest, CancelInFlightAbortsPromptlyAndLaterCallsWork) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> requests{0};
  LoopbackServer server([&](int fd, int index) {
    std::string request;
    while (LoopbackServer::ReadRequest(fd, &request)) {
      if (requests++ == 0) {
        std::unique_lock<std::mutex> lock(mu);
        cv.notify_all();  // the slow request has arrived
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
        return;
      }
      LoopbackServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  auto client = ClientFor(server.port());
  absl::StatusOr<HttpResponse> result;
  std::thread caller(
      [&] { result = client->Post("/slow", {}, "", absl::Now() + absl::Seconds(20)); });
  // Wait until the request reached the server, then cancel.
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return requests.load() > 0; }));
  }
  absl::Time start = absl::Now();
  client->CancelInFlight();
  caller.join();
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_THAT(client->Post("/fast", {}, "", absl::Now() + absl::Seconds(5)),
              ::petal::testing::IsOk());
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST(HttpClientTest, RefusedAndGarbledPeers) {
  int port;
  {
    LoopbackServer closed([](int, int) {});
    port = closed.port();
  }
  auto refused = ClientFor(port);
  EXPECT_THAT(refused->Post("/x", {}, "", absl::Now() + absl::Seconds(5)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot connect")));

  LoopbackServer grpc_like([](int fd, int) {
    std::string request;
    LoopbackServer::ReadRequest(fd, &request);
    LoopbackServer::Send(fd, std::string("\x00\x00\x06\x04\x00\x00\x00\x00\x00", 9));
  });
  auto garbled = ClientFor(grpc_like.port());
  EXPECT_THAT(garbled->Post("/x", {}, "", absl::Now() + absl::Seconds(5)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("grpc binding")));

  LoopbackServer silent([](int fd, int) {
    std::string request;
    LoopbackServer::ReadRequest(fd, &request);
  });
  auto dropped = ClientFor(silent.port());
  EXPECT_THAT(dropped->Post("/x", {}, "", absl::Now() + absl::Seconds(5)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("without answering")));
  EXPECT_THAT(dropped->Post("/x", {{"bad\r\nname", "v"}}, "", absl::Now() + absl::Seconds(5)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HttpClientTest, TlsNeedsUsableTrustAnchors) {
  HttpEndpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = 1;
  endpoint.tls = true;
  endpoint.root_certificates_pem =
      "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  EXPECT_THAT(HttpClient::Create(endpoint),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM")));
}

}  // namespace
}  // namespace petal::client::fleet::internal
