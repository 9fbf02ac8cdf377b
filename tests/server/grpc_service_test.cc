// FlowerService over a real gRPC server on 127.0.0.1:0, driven by a plain C++
// client stub (the same wire contract a Flower client speaks).
#include "server/grpc_service.h"

#include <unistd.h>

#include <fmt/format.h>
#include <condition_variable>
#include <future>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "common/serde.h"
#include "common/testing/status_matchers.h"
#include "flwr/proto/transport.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/grpc_server.h"

namespace petal::server {
namespace {

using flwr::proto::ClientMessage;
using flwr::proto::ServerMessage;
using ::testing::HasSubstr;

// A SimpleClientManager that lets tests wait for the pool to shrink too.
class ObservedManager final : public strategy::ClientManager {
 public:
  ObservedManager() : inner_(1, absl::Seconds(5)) {}
  int64_t NumAvailable() const override { return inner_.NumAvailable(); }
  bool Register(strategy::ClientProxyPtr c) override {
    bool ok = inner_.Register(std::move(c));
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
    return ok;
  }
  void Unregister(const std::string& cid) override {
    inner_.Unregister(cid);
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  std::vector<strategy::ClientProxyPtr> All() const override { return inner_.All(); }
  bool WaitFor(int64_t n, absl::Duration t) override { return inner_.WaitFor(n, t); }
  std::vector<strategy::ClientProxyPtr> Sample(int64_t n, int64_t m, uint64_t k) override {
    return inner_.Sample(n, m, k);
  }
  void Shutdown() override { inner_.Shutdown(); }
  // Waits until exactly `n` clients are registered.
  bool WaitForExactly(int64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return inner_.NumAvailable() == n; });
  }
  ClientConnectionPtr Only() {
    auto all = All();
    return all.size() == 1 ? std::dynamic_pointer_cast<ClientConnection>(all[0]) : nullptr;
  }

 private:
  strategy::SimpleClientManager inner_;
  std::mutex mu_;
  std::condition_variable cv_;
};

// Collects a connection's reply.
struct ReplySlot {
  std::promise<absl::StatusOr<grpc::ByteBuffer>> promise;
  ReplyCallback Callback() {
    return [this](absl::StatusOr<Reply> r) {
      if (r.ok()) {
        promise.set_value(std::move(r->bytes));  // the lease is returned here
      } else {
        promise.set_value(r.status());
      }
    };
  }
  absl::StatusOr<grpc::ByteBuffer> Get() {
    auto f = promise.get_future();
    if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      return absl::DeadlineExceededError("test: no reply callback");
    }
    return f.get();
  }
};

class GrpcServiceTest : public ::testing::Test {
 protected:
  void Start(int64_t max_clients = 0, int64_t max_message_length = 2147483647) {
    service_ = std::make_unique<FlowerService>(manager_,
                                               FlowerServiceOptions{max_clients, service_budget_slots_});
    ServerConfig config;
    config.address = "127.0.0.1:0";
    config.max_message_length = max_message_length;
    auto started = StartGrpcServer(config, *service_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started->server);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(fmt::format("127.0.0.1:{}", started->port),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = flwr::proto::FlowerService::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_->Wait();
    }
  }

  ServerMessage FitIns(float v) {
    ServerMessage m;
    common::FitIns ins;
    ins.parameters = common::Share({common::NDArray::FromVector<float>({2}, {v, v}).value()});
    ins.config.Set("server_round", int64_t{1});
    common::FitInsToProto(ins, m.mutable_fit_ins());
    return m;
  }

  int64_t service_budget_slots_ = 8;
  ObservedManager manager_;
  std::unique_ptr<FlowerService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<flwr::proto::FlowerService::Stub> stub_;
};

TEST_F(GrpcServiceTest, LockStepInstructionAndReply) {
  Start();
  grpc::ClientContext ctx;
  auto stream = stub_->Join(&ctx);
  ASSERT_TRUE(manager_.WaitForExactly(1));  // registered before sending anything
  ClientConnectionPtr conn = manager_.Only();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->cid().size(), 32u);
  EXPECT_EQ(conn->cid()[12], '4');  // uuid4

  ReplySlot slot;
  conn->Send(SerializeServerMessage(FitIns(2.5f)), slot.Callback());
  EXPECT_TRUE(conn->busy());
  // A second instruction while one is in flight is refused, not interleaved.
  ReplySlot refused;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), refused.Callback());
  EXPECT_THAT(refused.Get(), ::petal::testing::StatusIs(absl::StatusCode::kFailedPrecondition));

  ServerMessage received;
  ASSERT_TRUE(stream->Read(&received));
  ASSERT_TRUE(received.has_fit_ins());
  auto ins = common::FitInsFromProto(std::move(*received.mutable_fit_ins())).value();
  EXPECT_EQ((*ins.parameters)[0].values<float>()[0], 2.5f);

  ClientMessage reply;
  common::FitResToProto({common::SuccessStatus(), *ins.parameters, 7, {}}, reply.mutable_fit_res());
  ASSERT_TRUE(stream->Write(reply));
  PETAL_ASSERT_OK_AND_ASSIGN(grpc::ByteBuffer bytes, slot.Get());
  PETAL_ASSERT_OK_AND_ASSIGN(ClientMessage parsed, ParseClientMessage(bytes));
  EXPECT_EQ(parsed.fit_res().num_examples(), 7);
  EXPECT_FALSE(conn->busy());

  // The client half-closes while idle. As with Flower's bridge, nothing is read
  // between instructions, so it is noticed with the next instruction, which
  // fails; the stream then ends and the client leaves the pool.
  stream->WritesDone();
  ReplySlot gone;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), gone.Callback());
  EXPECT_THAT(gone.Get(), ::petal::testing::StatusIs(absl::StatusCode::kUnavailable));
  ServerMessage late;
  while (stream->Read(&late)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_TRUE(manager_.WaitForExactly(0));
  ReplySlot after;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), after.Callback());
  EXPECT_THAT(after.Get(), ::petal::testing::StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(GrpcServiceTest, IdleClientThatGoesAwayIsUnregisteredAtOnce) {
  Start();
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = stub_->Join(ctx.get());
  ASSERT_TRUE(manager_.WaitForExactly(1));
  ctx->TryCancel();  // what closing the channel or killing the process does
  ASSERT_TRUE(manager_.WaitForExactly(0));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(GrpcServiceTest, DisconnectDuringAnInstructionFailsIt) {
  Start();
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto stream = stub_->Join(ctx.get());
  ASSERT_TRUE(manager_.WaitForExactly(1));
  ClientConnectionPtr conn = manager_.Only();
  ReplySlot slot;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), slot.Callback());
  ServerMessage received;
  ASSERT_TRUE(stream->Read(&received));
  ctx->TryCancel();  // the client dies mid-instruction
  EXPECT_THAT(slot.Get(), ::petal::testing::StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_TRUE(manager_.WaitForExactly(0));
}

TEST_F(GrpcServiceTest, AStrayMessageIsReadAsTheNextReply) {
  // Lock-step, as Flower's bridge: nothing is read until an instruction is out,
  // then the next message is its reply, whatever it is (the round loop then
  // rejects a reply of the wrong kind).
  Start();
  grpc::ClientContext ctx;
  auto stream = stub_->Join(&ctx);
  ASSERT_TRUE(manager_.WaitForExactly(1));
  ClientMessage stray;
  stray.mutable_disconnect_res()->set_reason(flwr::proto::Reason::ACK);
  ASSERT_TRUE(stream->Write(stray));
  ClientConnectionPtr conn = manager_.Only();
  ReplySlot slot;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), slot.Callback());
  PETAL_ASSERT_OK_AND_ASSIGN(grpc::ByteBuffer bytes, slot.Get());
  PETAL_ASSERT_OK_AND_ASSIGN(ClientMessage parsed, ParseClientMessage(bytes));
  EXPECT_TRUE(parsed.has_disconnect_res());
}

TEST_F(GrpcServiceTest, ReceiveBudgetBoundsBufferedReplies) {
  // Two slots, five clients answering at once: replies are read two at a time
  // as the consumer releases them, and all arrive.
  service_budget_slots_ = 2;
  Start();
  constexpr int kClients = 5;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<ClientMessage, ServerMessage>>> streams;
  for (int i = 0; i < kClients; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub_->Join(contexts.back().get()));
  }
  ASSERT_TRUE(manager_.WaitForExactly(kClients));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Reply> held;
  int failures = 0;
  for (auto& p : manager_.All()) {
    std::dynamic_pointer_cast<ClientConnection>(p)->Send(
        SerializeServerMessage(FitIns(1.0f)), [&](absl::StatusOr<Reply> r) {
          std::lock_guard<std::mutex> lock(mu);
          if (r.ok()) {
            held.push_back(*std::move(r));  // keep the lease: the slot stays taken
          } else {
            ++failures;
          }
          cv.notify_all();
        });
  }
  for (auto& s : streams) {
    ServerMessage m;
    ASSERT_TRUE(s->Read(&m));
    ClientMessage reply;
    reply.mutable_fit_res()->set_num_examples(1);
    ASSERT_TRUE(s->Write(reply));
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return held.size() == 2; }));
  EXPECT_EQ(service_->budget().free_slots(), 0);
  // Nothing more is read while both slots are held.
  EXPECT_FALSE(cv.wait_for(lock, std::chrono::milliseconds(300), [&] { return held.size() > 2; }));
  held.clear();  // consumer done: both slots go to waiting streams
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return held.size() == 2; }));
  held.clear();
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return held.size() == 1; }));
  held.clear();
  EXPECT_EQ(failures, 0);
  lock.unlock();
  for (size_t i = 0; i < streams.size(); ++i) {
    contexts[i]->TryCancel();
    streams[i]->Finish();
  }
  ASSERT_TRUE(manager_.WaitForExactly(0));
  EXPECT_EQ(service_->budget().free_slots(), 2);
}

TEST_F(GrpcServiceTest, CloseSendsTheStatusToTheClient) {
  Start();
  grpc::ClientContext ctx;
  auto stream = stub_->Join(&ctx);
  ASSERT_TRUE(manager_.WaitForExactly(1));
  ClientConnectionPtr conn = manager_.Only();
  ReplySlot slot;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), slot.Callback());
  conn->Close(absl::DeadlineExceededError("Timeout of 3sec was exceeded."));
  EXPECT_THAT(slot.Get(), ::petal::testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
  ServerMessage m;
  while (stream->Read(&m)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(s.error_message(), "Timeout of 3sec was exceeded.");
}

TEST_F(GrpcServiceTest, MaxClientsRefusesExtraStreams) {
  Start(/*max_clients=*/1);
  grpc::ClientContext a;
  auto first = stub_->Join(&a);
  ASSERT_TRUE(manager_.WaitForExactly(1));
  grpc::ClientContext b;
  auto second = stub_->Join(&b);
  ServerMessage m;
  EXPECT_FALSE(second->Read(&m));
  grpc::Status s = second->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("max_clients=1"));
  EXPECT_EQ(manager_.NumAvailable(), 1);
}

TEST_F(GrpcServiceTest, OversizedReplyIsRefusedByTheLimit) {
  Start(/*max_clients=*/0, /*max_message_length=*/4096);
  grpc::ClientContext ctx;
  auto stream = stub_->Join(&ctx);
  ASSERT_TRUE(manager_.WaitForExactly(1));
  ClientConnectionPtr conn = manager_.Only();
  ReplySlot slot;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), slot.Callback());
  ServerMessage received;
  ASSERT_TRUE(stream->Read(&received));
  ClientMessage reply;
  std::vector<float> big(10000, 1.0f);
  common::FitResToProto({common::SuccessStatus(), {common::NDArray::FromVector<float>({10000}, big).value()}, 1, {}},
                        reply.mutable_fit_res());
  stream->Write(reply);
  EXPECT_THAT(slot.Get(), ::petal::testing::StatusIs(absl::StatusCode::kUnavailable));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  ASSERT_TRUE(manager_.WaitForExactly(0));
}

TEST_F(GrpcServiceTest, ManyStreamsOnOneChannel) {
  Start();
  constexpr int kClients = 50;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<ClientMessage, ServerMessage>>> streams;
  for (int i = 0; i < kClients; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub_->Join(contexts.back().get()));
  }
  ASSERT_TRUE(manager_.WaitForExactly(kClients));
  EXPECT_EQ(service_->open_streams(), kClients);
  const grpc::ByteBuffer shared = SerializeServerMessage(FitIns(3.0f));
  std::vector<std::unique_ptr<ReplySlot>> slots;
  auto all = manager_.All();
  for (auto& p : all) {
    slots.push_back(std::make_unique<ReplySlot>());
    std::dynamic_pointer_cast<ClientConnection>(p)->Send(shared, slots.back()->Callback());
  }
  for (auto& s : streams) {
    ServerMessage m;
    ASSERT_TRUE(s->Read(&m));
    ClientMessage reply;
    reply.mutable_fit_res()->set_num_examples(1);
    ASSERT_TRUE(s->Write(reply));
  }
  for (auto& slot : slots) EXPECT_TRUE(slot->Get().ok());
  for (size_t i = 0; i < streams.size(); ++i) {
    contexts[i]->TryCancel();
    streams[i]->Finish();
  }
  ASSERT_TRUE(manager_.WaitForExactly(0));
}

}  // namespace
}  // namespace petal::server
