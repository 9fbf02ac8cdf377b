// FlowerService over a real gRPC server on 127.0.0.1:0, driven by a plain C++
// client stub (the same wire contract a Flower client speaks).
#include "server/grpc_service.h"

#include <unistd.h>

#include <fmt/format.h>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

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
        grpc::ByteBuffer bytes = std::move(r->bytes);
        // Return the lease before waking the waiter, so a test that reads the
        // budget right after Get() sees the bytes released.
        r->lease.reset();
        promise.set_value(std::move(bytes));
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
                                               FlowerServiceOptions{max_clients, service_budget_bytes_});
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

  int64_t service_budget_bytes_ = 16 << 20;
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
  conn->Send(SerializeServerMessage(FitIns(2.5f)), 1024, slot.Callback());
  EXPECT_TRUE(conn->busy());
  // A second instruction while one is in flight is refused, not interleaved.
  ReplySlot refused;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, refused.Callback());
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
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, gone.Callback());
  EXPECT_THAT(gone.Get(), ::petal::testing::StatusIs(absl::StatusCode::kUnavailable));
  ServerMessage late;
  while (stream->Read(&late)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_TRUE(manager_.WaitForExactly(0));
  ReplySlot after;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, after.Callback());
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
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, slot.Callback());
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
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, slot.Callback());
  PETAL_ASSERT_OK_AND_ASSIGN(grpc::ByteBuffer bytes, slot.Get());
  PETAL_ASSERT_OK_AND_ASSIGN(ClientMessage parsed, ParseClientMessage(bytes));
  EXPECT_TRUE(parsed.has_disconnect_res());
}

TEST_F(GrpcServiceTest, ReceiveBudgetBoundsBufferedReplies) {
  // Room for two 1 KiB replies, five clients answering at once: replies are
  // read two at a time as the consumer releases them, and all arrive.
  service_budget_bytes_ = 2048;
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
        SerializeServerMessage(FitIns(1.0f)), 1024, [&](absl::StatusOr<Reply> r) {
          std::lock_guard<std::mutex> lock(mu);
          if (r.ok()) {
            held.push_back(*std::move(r));  // keep the lease: its bytes stay charged
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
  EXPECT_EQ(service_->budget().used_bytes(), 2048);
  // Nothing more is read while both leases are held.
  EXPECT_FALSE(cv.wait_for(lock, std::chrono::milliseconds(300), [&] { return held.size() > 2; }));
  held.clear();  // consumer done: the bytes go to waiting streams
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
  EXPECT_EQ(service_->budget().used_bytes(), 0);
}

// Clients that answer one instruction each, all at once; the test holds every
// reply it gets (and so its lease) until told to let go.
class HeldReplies {
 public:
  ReplyCallback Callback() {
    return [this](absl::StatusOr<Reply> r) {
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok()) {
        held_.push_back(*std::move(r));
      } else {
        ++failures_;
      }
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return held_.size() >= n; });
  }
  // True if more than `n` arrive within `d` (used to show that none do).
  bool MoreThanWithin(size_t n, std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [&] { return held_.size() > n; });
  }
  std::vector<Reply> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(held_);
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  int failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Reply> held_;
  int failures_ = 0;
};

TEST_F(GrpcServiceTest, SmallRepliesAreReadManyAtOnce) {
  // 30 evaluate-sized replies (charged 1 KiB each) fit in 64 KiB: all are
  // read while the consumer still holds every one of them.
  service_budget_bytes_ = 64 << 10;
  Start();
  constexpr int kClients = 30;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<ClientMessage, ServerMessage>>> streams;
  for (int i = 0; i < kClients; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub_->Join(contexts.back().get()));
  }
  ASSERT_TRUE(manager_.WaitForExactly(kClients));
  HeldReplies replies;
  ServerMessage evaluate;
  evaluate.mutable_evaluate_ins()->mutable_parameters()->set_tensor_type("numpy.ndarray");
  const grpc::ByteBuffer message = SerializeServerMessage(evaluate);
  for (auto& p : manager_.All()) {
    std::dynamic_pointer_cast<ClientConnection>(p)->Send(message, 64, replies.Callback());
  }
  for (auto& s : streams) {
    ServerMessage m;
    ASSERT_TRUE(s->Read(&m));
    ASSERT_TRUE(m.has_evaluate_ins());
    ClientMessage reply;
    reply.mutable_evaluate_res()->set_num_examples(1);
    reply.mutable_evaluate_res()->set_loss(0.5f);
    ASSERT_TRUE(s->Write(reply));
  }
  ASSERT_TRUE(replies.WaitFor(kClients));
  EXPECT_EQ(replies.failures(), 0);
  // Charged at least the floor per read (64 requested, 1 KiB minimum).
  EXPECT_EQ(service_->budget().used_bytes(), kClients * 1024);
  replies.Take();
  EXPECT_EQ(service_->budget().used_bytes(), 0);
  for (size_t i = 0; i < streams.size(); ++i) {
    contexts[i]->TryCancel();
    streams[i]->Finish();
  }
  ASSERT_TRUE(manager_.WaitForExactly(0));
}

TEST_F(GrpcServiceTest, ModelSizedRepliesLargerThanTheBudgetArriveOneAtATime) {
  // Each fit reply is charged 1 MiB against a 4 KiB budget: one is always
  // admitted, the next only once the consumer lets go of it.
  service_budget_bytes_ = 4096;
  Start();
  constexpr int kClients = 3;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<ClientMessage, ServerMessage>>> streams;
  for (int i = 0; i < kClients; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub_->Join(contexts.back().get()));
  }
  ASSERT_TRUE(manager_.WaitForExactly(kClients));
  HeldReplies replies;
  for (auto& p : manager_.All()) {
    std::dynamic_pointer_cast<ClientConnection>(p)->Send(SerializeServerMessage(FitIns(1.0f)),
                                                         1 << 20, replies.Callback());
  }
  // Replies of 256 KiB each (the budget's unit is an estimate, not a cap).
  // Each client writes on its own thread: a reply the server has not admitted
  // stays in the client, blocked by HTTP/2 flow control.
  const std::string tensor(256 << 10, 'x');
  std::vector<std::thread> writers;
  std::atomic<int> written{0};
  for (auto& s : streams) {
    ServerMessage m;
    ASSERT_TRUE(s->Read(&m));
    writers.emplace_back([&written, &tensor, stream = s.get()] {
      ClientMessage reply;
      reply.mutable_fit_res()->set_num_examples(1);
      reply.mutable_fit_res()->mutable_parameters()->add_tensors(tensor);
      if (stream->Write(reply)) ++written;
    });
  }
  for (int k = 1; k <= kClients; ++k) {
    ASSERT_TRUE(replies.WaitFor(1)) << "reply " << k;
    EXPECT_FALSE(replies.MoreThanWithin(1, std::chrono::milliseconds(200)));
    EXPECT_EQ(service_->budget().used_bytes(), 1 << 20);
    std::vector<Reply> got = replies.Take();
    ASSERT_EQ(got.size(), 1u);
    PETAL_ASSERT_OK_AND_ASSIGN(ClientMessage parsed, ParseClientMessage(got[0].bytes));
    EXPECT_EQ(parsed.fit_res().parameters().tensors(0).size(), tensor.size());
  }
  for (std::thread& w : writers) w.join();
  EXPECT_EQ(written.load(), kClients);
  EXPECT_EQ(replies.failures(), 0);
  EXPECT_EQ(service_->budget().used_bytes(), 0);
  for (size_t i = 0; i < streams.size(); ++i) {
    contexts[i]->TryCancel();
    streams[i]->Finish();
  }
  ASSERT_TRUE(manager_.WaitForExactly(0));
}

TEST_F(GrpcServiceTest, AStreamEndingWhileQueuedLetsTheNextOneRead) {
  // Budget for one reply: the second client's read is queued behind the held
  // first; the second client dies while queued, and the third is read as soon
  // as the first is released (the dead one neither reads nor keeps bytes).
  service_budget_bytes_ = 1024;
  Start();
  constexpr int kClients = 3;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<ClientMessage, ServerMessage>>> streams;
  std::vector<ClientConnectionPtr> conns;
  for (int i = 0; i < kClients; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub_->Join(contexts.back().get()));
    ASSERT_TRUE(manager_.WaitForExactly(i + 1));
    // The newest registration is the one not seen yet.
    for (auto& p : manager_.All()) {
      auto c = std::dynamic_pointer_cast<ClientConnection>(p);
      bool seen = false;
      for (auto& k : conns) seen = seen || k == c;
      if (!seen) conns.push_back(c);
    }
  }
  std::vector<std::unique_ptr<ReplySlot>> slots;
  for (int i = 0; i < kClients; ++i) {
    slots.push_back(std::make_unique<ReplySlot>());
  }
  // One at a time, so the budget queues them in this order.
  HeldReplies first;
  conns[0]->Send(SerializeServerMessage(FitIns(1.0f)), 1024, first.Callback());
  ServerMessage m;
  ASSERT_TRUE(streams[0]->Read(&m));
  ClientMessage reply;
  reply.mutable_fit_res()->set_num_examples(1);
  ASSERT_TRUE(streams[0]->Write(reply));
  ASSERT_TRUE(first.WaitFor(1));  // held: the whole budget is in use
  conns[1]->Send(SerializeServerMessage(FitIns(1.0f)), 1024, slots[1]->Callback());
  ASSERT_TRUE(streams[1]->Read(&m));
  conns[2]->Send(SerializeServerMessage(FitIns(1.0f)), 1024, slots[2]->Callback());
  ASSERT_TRUE(streams[2]->Read(&m));
  ASSERT_TRUE(streams[2]->Write(reply));
  // Both reads are queued once their instructions' writes complete.
  auto queued_becomes = [&](int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (service_->budget().queued() != n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polls a counter; no hook to wait on
    }
    return service_->budget().queued() == n;
  };
  ASSERT_TRUE(queued_becomes(2));
  contexts[1]->TryCancel();
  streams[1]->Finish();
  EXPECT_THAT(slots[1]->Get(), ::petal::testing::StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_TRUE(queued_becomes(1));  // its OnDone took it out of the queue
  EXPECT_EQ(service_->budget().used_bytes(), 1024);
  first.Take();  // the budget's bytes go to the third client's read
  PETAL_ASSERT_OK_AND_ASSIGN(grpc::ByteBuffer bytes, slots[2]->Get());
  PETAL_ASSERT_OK_AND_ASSIGN(ClientMessage parsed, ParseClientMessage(bytes));
  EXPECT_TRUE(parsed.has_fit_res());
  EXPECT_EQ(service_->budget().used_bytes(), 0);
  EXPECT_EQ(service_->budget().queued(), 0);
  for (int i : {0, 2}) {
    contexts[i]->TryCancel();
    streams[i]->Finish();
  }
  ASSERT_TRUE(manager_.WaitForExactly(0));
}

TEST_F(GrpcServiceTest, CloseSendsTheStatusToTheClient) {
  Start();
  grpc::ClientContext ctx;
  auto stream = stub_->Join(&ctx);
  ASSERT_TRUE(manager_.WaitForExactly(1));
  ClientConnectionPtr conn = manager_.Only();
  ReplySlot slot;
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, slot.Callback());
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
  conn->Send(SerializeServerMessage(FitIns(1.0f)), 1024, slot.Callback());
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
    std::dynamic_pointer_cast<ClientConnection>(p)->Send(shared, shared.Length(), slots.back()->Callback());
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
