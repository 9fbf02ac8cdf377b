#include "fake_flower_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <limits>
#include <stdexcept>

namespace petal::client::testing {

std::optional<flwr::proto::ClientMessage> FakeSession::Receive() {
  flwr::proto::ClientMessage message;
  if (!stream_->Read(&message)) return std::nullopt;
  return message;
}

FakeFlowerServer::FakeFlowerServer(Handler handler, int port)
    : handler_(std::move(handler)), service_(*this) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  builder.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    throw std::runtime_error("FakeFlowerServer: cannot listen on 127.0.0.1:" +
                             std::to_string(port));
  }
}

FakeFlowerServer::~FakeFlowerServer() { Shutdown(); }

void FakeFlowerServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now());  // cancels open streams now
  server_->Wait();
  server_.reset();
}

int FakeFlowerServer::sessions() const {
  absl::MutexLock lock(&mu_);
  return sessions_;
}

bool FakeFlowerServer::WaitForSessions(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sessions_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

grpc::Status FakeFlowerServer::Service::Join(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<flwr::proto::ServerMessage, flwr::proto::ClientMessage>* stream) {
  int index = 0;
  {
    absl::MutexLock lock(&owner_.mu_);
    index = owner_.sessions_++;
  }
  FakeSession session(index, context, stream);
  return owner_.handler_(session);
}

int PickUnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/getsockname failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace petal::client::testing
