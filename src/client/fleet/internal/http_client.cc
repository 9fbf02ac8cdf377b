#include "client/fleet/internal/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/status_macros.h"

namespace petal::client::fleet::internal {
namespace {

constexpr size_t kMaxHeadSize = 64 * 1024;
// uvicorn closes idle keep-alive connections after 5 s; do not reuse older ones.
constexpr absl::Duration kMaxIdle = absl::Seconds(3);

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 24)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

// Blocks SIGPIPE on this thread while OpenSSL writes to a socket the peer may
// have closed, and swallows a SIGPIPE raised meanwhile: no process-wide
// signal disposition is changed.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    already_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~ScopedSigpipeBlock() {
    if (!blocked_) return;
    if (!already_pending_) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool blocked_ = false;
  bool already_pending_ = false;
};

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

// --- host:port ---------------------------------------------------------------

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(std::string_view address) {
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(fmt::format("address '{}' is not [ipv6]:port", address));
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || address.find(':') != colon) {
      return absl::InvalidArgumentError(fmt::format(
          "address '{}' is not host:port (write IPv6 addresses as [addr]:port)", address));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  int value = 0;
  if (host.empty() || port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return absl::InvalidArgumentError(fmt::format("address '{}' is not host:port", address));
  }
  for (char c : port) value = value * 10 + (c - '0');
  if (value < 1 || value > 65535) {
    return absl::InvalidArgumentError(fmt::format("port of '{}' is not in 1..65535", address));
  }
  return std::make_pair(std::string(host), value);
}

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

// --- response parser ---------------------------------------------------------

HttpResponseParser::HttpResponseParser(size_t max_body) : max_body_(max_body) {}

absl::Status HttpResponseParser::ParseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      !std::isdigit(static_cast<unsigned char>(status_line[9])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[10])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[11]))) {
    return absl::InvalidArgumentError(
        fmt::format("malformed HTTP status line '{}'", Printable(status_line)));
  }
  const bool http10 = status_line[7] == '0';
  response_ = HttpResponse();
  response_.status =
      (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 + (status_line[11] - '0');
  response_.reason = std::string(Trim(status_line.substr(12)));
  bool chunked = false;
  bool has_length = false;
  uint64_t length = 0;
  keep_alive_ = !http10;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          fmt::format("malformed HTTP header line '{}'", Printable(line)));
    }
    std::string name = Lower(Trim(line.substr(0, colon)));
    std::string value(Trim(line.substr(colon + 1)));
    if (name == "content-length") {
      if (value.empty() || value.size() > 19 ||
          !std::all_of(value.begin(), value.end(),
                       [](unsigned char c) { return std::isdigit(c); })) {
        return absl::InvalidArgumentError(fmt::format("bad Content-Length '{}'", Printable(value)));
      }
      uint64_t v = std::stoull(value);
      if (has_length && v != length)
        return absl::InvalidArgumentError("conflicting Content-Length headers");
      length = v;
      has_length = true;
    } else if (name == "transfer-encoding") {
      std::string lower = Lower(value);
      if (lower != "chunked") {
        return absl::InvalidArgumentError(
            fmt::format("unsupported Transfer-Encoding '{}'", Printable(value)));
      }
      chunked = true;
    } else if (name == "connection") {
      std::string lower = Lower(value);
      if (lower.find("close") != std::string::npos) keep_alive_ = false;
      if (http10 && lower.find("keep-alive") != std::string::npos) keep_alive_ = true;
    }
    response_.headers.emplace_back(std::move(name), std::move(value));
  }
  if (response_.status == 204 || response_.status == 304) {
    state_ = State::kDone;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (has_length) {
    if (length > max_body_) {
      return absl::ResourceExhaustedError(
          fmt::format("HTTP response body of {} bytes exceeds the limit of {}", length, max_body_));
    }
    remaining_ = static_cast<size_t>(length);
    response_.body.reserve(remaining_);
    state_ = remaining_ == 0 ? State::kDone : State::kBody;
  } else {
    keep_alive_ = false;
    state_ = State::kUntilEof;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> HttpResponseParser::Process() {
  size_t pos = 0;
  auto done = [&](bool complete) -> absl::StatusOr<bool> {
    buffer_.erase(0, pos);
    if (complete && !buffer_.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{} unexpected bytes after the HTTP response", buffer_.size()));
    }
    return complete;
  };
  while (true) {
    switch (state_) {
      case State::kHead: {
        if (buffer_.size() - pos >= 5 && buffer_.compare(pos, 5, "HTTP/") != 0) {
          return absl::InvalidArgumentError(fmt::format(
              "the peer does not speak HTTP/1.1 (it sent '{}'); if this is a gRPC-only Fleet API "
              "(flwr before 1.40, or FLWR_INTERNAL_GRPC_FLEET_API), use the grpc binding",
              Printable(std::string_view(buffer_).substr(pos))));
        }
        size_t end = buffer_.find("\r\n\r\n", pos);
        if (end == std::string::npos) {
          if (buffer_.size() - pos > kMaxHeadSize) {
            return absl::ResourceExhaustedError("HTTP response head exceeds 64 KiB");
          }
          return done(false);
        }
        PETAL_RETURN_IF_ERROR(ParseHead(std::string_view(buffer_).substr(pos, end + 2 - pos)));
        pos = end + 4;
        if (response_.status >= 100 && response_.status < 200)
          state_ = State::kHead;  // 100 Continue
        break;
      }
      case State::kBody: {
        size_t take = std::min(remaining_, buffer_.size() - pos);
        response_.body.append(buffer_, pos, take);
        pos += take;
        remaining_ -= take;
        if (remaining_ > 0) return done(false);
        state_ = State::kDone;
        break;
      }
      case State::kChunkSize: {
        size_t end = buffer_.find("\r\n", pos);
        if (end == std::string::npos) {
          if (buffer_.size() - pos > 1024)
            return absl::InvalidArgumentError("HTTP chunk size line too long");
          return done(false);
        }
        std::string_view line = std::string_view(buffer_).substr(pos, end - pos);
        line = Trim(line.substr(0, line.find(';')));
        if (line.empty() || line.size() > 15 ||
            !std::all_of(line.begin(), line.end(),
                         [](unsigned char c) { return std::isxdigit(c); })) {
          return absl::InvalidArgumentError(
              fmt::format("bad HTTP chunk size '{}'", Printable(line)));
        }
        size_t size = std::stoull(std::string(line), nullptr, 16);
        pos = end + 2;
        if (size == 0) {
          state_ = State::kTrailers;
        } else {
          if (response_.body.size() + size > max_body_) {
            return absl::ResourceExhaustedError(
                fmt::format("HTTP response body exceeds the limit of {} bytes", max_body_));
          }
          remaining_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        size_t take = std::min(remaining_, buffer_.size() - pos);
        response_.body.append(buffer_, pos, take);
        pos += take;
        remaining_ -= take;
        if (remaining_ > 0) return done(false);
        state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd: {
        if (buffer_.size() - pos < 2) return done(false);
        if (buffer_.compare(pos, 2, "\r\n") != 0)
          return absl::InvalidArgumentError("HTTP chunk not ended by CRLF");
        pos += 2;
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        size_t end = buffer_.find("\r\n", pos);
        if (end == std::string::npos) {
          if (buffer_.size() - pos > kMaxHeadSize)
            return absl::ResourceExhaustedError("HTTP trailers too long");
          return done(false);
        }
        bool empty = end == pos;
        pos = end + 2;
        if (empty) state_ = State::kDone;
        break;
      }
      case State::kUntilEof: {
        if (response_.body.size() + (buffer_.size() - pos) > max_body_) {
          return absl::ResourceExhaustedError(
              fmt::format("HTTP response body exceeds the limit of {} bytes", max_body_));
        }
        response_.body.append(buffer_, pos, std::string::npos);
        pos = buffer_.size();
        return done(false);
      }
      case State::kDone:
        return done(true);
    }
  }
}

absl::StatusOr<bool> HttpResponseParser::Feed(std::string_view data) {
  if (!data.empty()) started_ = true;
  if (state_ == State::kDone && !data.empty()) {
    return absl::InvalidArgumentError("bytes after a complete HTTP response");
  }
  buffer_.append(data);
  return Process();
}

absl::StatusOr<bool> HttpResponseParser::FeedEof() {
  keep_alive_ = false;
  if (state_ == State::kUntilEof) {
    state_ = State::kDone;
    return true;
  }
  if (state_ == State::kDone) return true;
  return absl::UnavailableError(
      started_ ? "the server closed the connection in the middle of its response"
               : "the server closed the connection without answering");
}

// --- connections ---------------------------------------------------------------

class HttpClient::Connection {
 public:
  Connection() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }
  // Forgets a wake-up meant for an earlier request on this connection.
  void DrainWake() {
    uint64_t value = 0;
    [[maybe_unused]] ssize_t n = read(wake_fd_, &value, sizeof(value));
  }

  absl::Status Connect(const HttpEndpoint& endpoint, SSL_CTX* ssl_ctx, absl::Time deadline) {
    if (wake_fd_ < 0) return absl::InternalError(fmt::format("eventfd: {}", std::strerror(errno)));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    std::string port = std::to_string(endpoint.port);
    int rc = getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &result);
    if (rc != 0) {
      return absl::UnavailableError(
          fmt::format("cannot resolve '{}': {}", endpoint.host, gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(result, freeaddrinfo);
    absl::Status last = absl::UnavailableError("no address");
    for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
      last = ConnectTo(ai, deadline);
      if (last.ok()) break;
      if (last.code() == absl::StatusCode::kCancelled ||
          last.code() == absl::StatusCode::kDeadlineExceeded) {
        return last;
      }
    }
    if (!last.ok()) {
      return absl::Status(last.code(), fmt::format("cannot connect to {}:{}: {}", endpoint.host,
                                                   endpoint.port, std::string(last.message())));
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ssl_ctx != nullptr) return Handshake(endpoint, ssl_ctx, deadline);
    return absl::OkStatus();
  }

  absl::Status WriteAll(std::string_view data, absl::Time deadline) {
    while (!data.empty()) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        int n = 0;
        {
          ScopedSigpipeBlock block;
          n = SSL_write(ssl_, data.data(),
                        static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
        }
        if (n > 0) {
          data.remove_prefix(static_cast<size_t>(n));
          continue;
        }
        PETAL_RETURN_IF_ERROR(SslWait(n, deadline, "write"));
      } else {
        ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
          data.remove_prefix(static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          PETAL_RETURN_IF_ERROR(WaitFor(POLLOUT, deadline));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return absl::UnavailableError(fmt::format("send failed: {}", std::strerror(errno)));
      }
    }
    return absl::OkStatus();
  }

  // Reads what is available (waiting for at least one byte); 0 means EOF.
  absl::StatusOr<size_t> ReadSome(char* buf, size_t size, absl::Time deadline) {
    while (true) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(size, 1 << 30)));
        if (n > 0) return static_cast<size_t>(n);
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
        PETAL_RETURN_IF_ERROR(SslWait(n, deadline, "read"));
      } else {
        ssize_t n = recv(fd_, buf, size, 0);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          PETAL_RETURN_IF_ERROR(WaitFor(POLLIN, deadline));
          continue;
        }
        if (errno == EINTR) continue;
        return absl::UnavailableError(fmt::format("recv failed: {}", std::strerror(errno)));
      }
    }
  }

  // An idle connection the server has closed (or that holds stray bytes) is
  // readable; a healthy idle one is not.
  bool LooksUsable() const {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
  }

  absl::Time last_used = absl::InfinitePast();

 private:
  absl::Status ConnectTo(addrinfo* ai, absl::Time deadline) {
    if (fd_ >= 0) close(fd_);
    fd_ = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd_ < 0) return absl::UnavailableError(fmt::format("socket: {}", std::strerror(errno)));
    if (connect(fd_, ai->ai_addr, ai->ai_addrlen) == 0) return absl::OkStatus();
    if (errno != EINPROGRESS) return absl::UnavailableError(std::strerror(errno));
    PETAL_RETURN_IF_ERROR(WaitFor(POLLOUT, deadline));
    int error = 0;
    socklen_t len = sizeof(error);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    if (error != 0) return absl::UnavailableError(std::strerror(error));
    return absl::OkStatus();
  }

  absl::Status Handshake(const HttpEndpoint& endpoint, SSL_CTX* ssl_ctx, absl::Time deadline) {
    ssl_ = SSL_new(ssl_ctx);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
      return absl::InternalError("cannot create a TLS session: " + OpenSslErrors());
    }
    if (IsIpLiteral(endpoint.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), endpoint.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_, endpoint.host.c_str());
      SSL_set1_host(ssl_, endpoint.host.c_str());
    }
    while (true) {
      ERR_clear_error();
      int rc = 0;
      {
        ScopedSigpipeBlock block;
        rc = SSL_connect(ssl_);
      }
      if (rc == 1) return absl::OkStatus();
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        PETAL_RETURN_IF_ERROR(WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline));
        continue;
      }
      long verify = SSL_get_verify_result(ssl_);
      std::string why = OpenSslErrors();
      if (verify != X509_V_OK)
        why = fmt::format("certificate verification failed: {}",
                          X509_verify_cert_error_string(verify));
      // A TLS failure is a configuration problem, not an outage.
      return absl::FailedPreconditionError(fmt::format("TLS handshake with {}:{} failed: {}",
                                                       endpoint.host, endpoint.port,
                                                       why.empty() ? "closed" : why));
    }
  }

  absl::Status SslWait(int rc, absl::Time deadline, std::string_view what) {
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ) return WaitFor(POLLIN, deadline);
    if (err == SSL_ERROR_WANT_WRITE) return WaitFor(POLLOUT, deadline);
    std::string why = OpenSslErrors();
    return absl::UnavailableError(
        fmt::format("TLS {} failed: {}", what, why.empty() ? std::strerror(errno) : why));
  }

  absl::Status WaitFor(short events, absl::Time deadline) {
    while (true) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration())
        return absl::DeadlineExceededError("the HTTP request timed out");
      pollfd fds[2] = {{fd_, events, 0}, {wake_fd_, POLLIN, 0}};
      int timeout_ms =
          static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60'000));
      int rc = poll(fds, 2, timeout_ms);
      if (rc < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(fmt::format("poll: {}", std::strerror(errno)));
      }
      if (fds[1].revents != 0) return absl::CancelledError("the HTTP request was cancelled");
      if (fds[0].revents != 0) return absl::OkStatus();
    }
  }

  int fd_ = -1;
  int wake_fd_ = -1;
  SSL* ssl_ = nullptr;
};

// --- client --------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(HttpEndpoint endpoint,
                                                               size_t max_body) {
  SSL_CTX* ctx = nullptr;
  if (endpoint.tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr)
      return absl::InternalError("cannot create a TLS context: " + OpenSslErrors());
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> guard(ctx, SSL_CTX_free);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (endpoint.root_certificates_pem.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return absl::InternalError("cannot load the system trust store: " + OpenSslErrors());
      }
    } else {
      std::unique_ptr<BIO, decltype(&BIO_free)> bio(
          BIO_new_mem_buf(endpoint.root_certificates_pem.data(),
                          static_cast<int>(endpoint.root_certificates_pem.size())),
          BIO_free);
      X509_STORE* store = SSL_CTX_get_cert_store(ctx);
      int loaded = 0;
      while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        X509_STORE_add_cert(store, cert);
        X509_free(cert);
        ++loaded;
      }
      ERR_clear_error();  // the end-of-data "error"
      if (loaded == 0) {
        return absl::InvalidArgumentError("root certificates hold no PEM certificate");
      }
    }
    guard.release();
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(endpoint), max_body, ctx));
}

HttpClient::HttpClient(HttpEndpoint endpoint, size_t max_body, SSL_CTX* ssl_ctx)
    : endpoint_(std::move(endpoint)), max_body_(max_body), ssl_ctx_(ssl_ctx) {}

HttpClient::~HttpClient() {
  {
    absl::MutexLock lock(&mu_);
    idle_.clear();
  }
  if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
}

void HttpClient::CancelInFlight() {
  absl::MutexLock lock(&mu_);
  ++generation_;
  for (Connection* c : busy_) c->Wake();
}

absl::StatusOr<std::unique_ptr<HttpClient::Connection>> HttpClient::Acquire(absl::Time deadline,
                                                                            uint64_t generation,
                                                                            bool* reused) {
  std::unique_ptr<Connection> connection;
  {
    absl::MutexLock lock(&mu_);
    if (generation != generation_) return absl::CancelledError("the HTTP request was cancelled");
    const absl::Time now = absl::Now();
    while (!idle_.empty()) {
      std::unique_ptr<Connection> candidate = std::move(idle_.back());
      idle_.pop_back();
      if (now - candidate->last_used < kMaxIdle && candidate->LooksUsable()) {
        connection = std::move(candidate);
        connection->DrainWake();
        break;
      }
    }
    *reused = connection != nullptr;
    if (!connection) connection = std::make_unique<Connection>();
    busy_.push_back(connection.get());
  }
  if (!*reused) {
    absl::Status status = connection->Connect(
        endpoint_, ssl_ctx_, std::min(deadline, absl::Now() + endpoint_.connect_timeout));
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      busy_.erase(std::find(busy_.begin(), busy_.end(), connection.get()));
      return status;
    }
  }
  return connection;
}

void HttpClient::Release(std::unique_ptr<Connection> connection) {
  absl::MutexLock lock(&mu_);
  busy_.erase(std::find(busy_.begin(), busy_.end(), connection.get()));
  if (connection->last_used != absl::InfinitePast()) idle_.push_back(std::move(connection));
}

absl::StatusOr<HttpResponse> HttpClient::Attempt(Connection& connection, const std::string& request,
                                                 absl::Time deadline, bool* response_started) {
  PETAL_RETURN_IF_ERROR(connection.WriteAll(request, deadline));
  HttpResponseParser parser(max_body_);
  std::string buf(64 * 1024, '\0');
  while (true) {
    PETAL_ASSIGN_OR_RETURN(size_t n, connection.ReadSome(buf.data(), buf.size(), deadline));
    absl::StatusOr<bool> complete =
        n == 0 ? parser.FeedEof() : parser.Feed(std::string_view(buf.data(), n));
    *response_started = parser.started();
    if (!complete.ok()) return complete.status();
    if (*complete) {
      connection.last_used = parser.keep_alive() ? absl::Now() : absl::InfinitePast();
      return std::move(parser.response());
    }
  }
}

absl::StatusOr<HttpResponse> HttpClient::Post(std::string_view path, const HttpHeaders& headers,
                                              std::string_view body, absl::Time deadline) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = generation_;
  }
  const bool v6 = endpoint_.host.find(':') != std::string::npos;
  std::string request =
      fmt::format("POST {} HTTP/1.1\r\nHost: {}{}{}:{}\r\nContent-Length: {}\r\n", path,
                  v6 ? "[" : "", endpoint_.host, v6 ? "]" : "", endpoint_.port, body.size());
  for (const auto& [name, value] : headers) {
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("HTTP header '{}' contains a line break or colon", name));
    }
    request += fmt::format("{}: {}\r\n", name, value);
  }
  request += "\r\n";
  request.append(body);

  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    PETAL_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                           Acquire(deadline, generation, &reused));
    bool started = false;
    absl::StatusOr<HttpResponse> response = Attempt(*connection, request, deadline, &started);
    if (!response.ok())
      connection->last_used = absl::InfinitePast();  // never reuse a failed connection
    Release(std::move(connection));
    if (response.ok()) return response;
    // A kept-alive connection the server closed while idle fails before any
    // response byte: send once more on a fresh connection.
    if (attempt == 0 && reused && !started &&
        response.status().code() == absl::StatusCode::kUnavailable) {
      continue;
    }
    return response.status();
  }
}

}  // namespace petal::client::fleet::internal
