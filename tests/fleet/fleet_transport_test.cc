#include "client/fleet/fleet_transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/fleet/content.h"
#include "client/fleet/records.h"
#include "client/start_client.h"
#include "common/file_util.h"
#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "flwr/proto/fab.pb.h"
#include "flwr/proto/fleet.pb.h"
#include "flwr/proto/heartbeat.pb.h"
#include "flwr/proto/run.pb.h"

namespace petal::client::fleet {
namespace {

namespace proto = ::flwr::proto;
using common::NDArray;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint64_t kFirstNodeId = 1234;

// The state of an in-process fake SuperLink, shared by the FleetApi the
// transport owns and the test that inspects it.
struct FakeState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<FleetRpc> calls;
  std::map<std::string, uint64_t> keys;  // public key -> node id
  uint64_t next_node_id = kFirstNodeId;
  bool registration_disabled = false;
  // Non-zero: the first key seen is already registered under this id (a
  // SuperLink that kept its state across a restart).
  uint64_t already_registered_id = 0;
  bool down = false;                                      // every call fails Unavailable
  std::map<FleetRpc, std::deque<absl::Status>> injected;  // next results of a call
  int heartbeats = 0;
  bool forget_nodes_on_heartbeat = false;  // a SuperLink restarted with fresh state
  std::deque<std::pair<proto::Message, proto::ObjectTree>> pending;
  ObjectContents store;
  std::map<std::string, int> unavailable;  // object id -> times to answer "not yet"
  std::map<std::string, int> pulls;        // object id -> PullObject calls
  std::vector<proto::PushMessagesRequest> pushed;
  std::vector<proto::PushObjectRequest> pushed_objects;
  std::vector<std::string> confirmed;
  int cancelled = 0;

  int Count(FleetRpc rpc) { return static_cast<int>(std::count(calls.begin(), calls.end(), rpc)); }
  // Waits (condition variable, 10 s deadline) until `pred` holds under the lock.
  bool WaitFor(const std::function<bool()>& pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  }
  void Enqueue(const proto::Message& message) {
    DeflatedMessage d = *DeflateMessage(message);
    proto::Message wire = message;
    wire.mutable_metadata()->set_message_id(d.message_id);
    wire.mutable_content()->Clear();
    std::lock_guard<std::mutex> lock(mu);
    for (auto& o : d.objects) store[o.id] = o.content;
    pending.emplace_back(wire, d.tree);
    cv.notify_all();
  }
};

class FakeFleetApi final : public FleetApi {
 public:
  explicit FakeFleetApi(std::shared_ptr<FakeState> state) : s_(std::move(state)) {}

  absl::Status Call(FleetRpc rpc, const google::protobuf::Message& request,
                    google::protobuf::Message* response, absl::Duration) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->calls.push_back(rpc);
    s_->cv.notify_all();
    if (s_->down) return absl::UnavailableError("connection refused");
    if (auto it = s_->injected.find(rpc); it != s_->injected.end() && !it->second.empty()) {
      absl::Status status = it->second.front();
      it->second.pop_front();
      if (!status.ok()) return status;
    }
    switch (rpc) {
      case FleetRpc::kRegisterNode: {
        const auto& req = static_cast<const proto::RegisterNodeFleetRequest&>(request);
        if (s_->registration_disabled) {
          return MakeFleetError(
              absl::StatusCode::kFailedPrecondition, rpc,
              R"({"code": 2001, "detail": "SuperNode authentication is enabled."})");
        }
        if (s_->already_registered_id != 0) {
          s_->keys[req.public_key()] = s_->already_registered_id;
          s_->already_registered_id = 0;
        }
        if (s_->keys.count(req.public_key())) {
          return MakeFleetError(absl::StatusCode::kFailedPrecondition, rpc,
                                R"({"code": 23, "detail": "Public key already in use."})");
        }
        s_->keys[req.public_key()] = s_->next_node_id++;
        static_cast<proto::RegisterNodeFleetResponse*>(response)->set_node_id(
            s_->keys[req.public_key()]);
        return absl::OkStatus();
      }
      case FleetRpc::kActivateNode: {
        const auto& req = static_cast<const proto::ActivateNodeRequest&>(request);
        EXPECT_EQ(req.heartbeat_interval(), 10.0);
        auto it = s_->keys.find(req.public_key());
        if (it == s_->keys.end()) return absl::FailedPreconditionError("no such key");
        static_cast<proto::ActivateNodeResponse*>(response)->set_node_id(it->second);
        return absl::OkStatus();
      }
      case FleetRpc::kSendNodeHeartbeat: {
        ++s_->heartbeats;
        bool known = !s_->forget_nodes_on_heartbeat;
        if (s_->forget_nodes_on_heartbeat) {
          s_->keys.clear();
          s_->forget_nodes_on_heartbeat = false;
        }
        static_cast<proto::SendNodeHeartbeatResponse*>(response)->set_success(known);
        return absl::OkStatus();
      }
      case FleetRpc::kPullMessages: {
        auto* res = static_cast<proto::PullMessagesResponse*>(response);
        if (!s_->pending.empty()) {
          *res->add_messages_list() = s_->pending.front().first;
          *res->add_message_object_trees() = s_->pending.front().second;
          s_->pending.pop_front();
        }
        return absl::OkStatus();
      }
      case FleetRpc::kPullObject: {
        const auto& req = static_cast<const proto::PullObjectRequest&>(request);
        auto* res = static_cast<proto::PullObjectResponse*>(response);
        ++s_->pulls[req.object_id()];
        auto it = s_->store.find(req.object_id());
        res->set_object_found(it != s_->store.end());
        if (it == s_->store.end()) return absl::OkStatus();
        if (s_->unavailable[req.object_id()] > 0) {
          --s_->unavailable[req.object_id()];
          return absl::OkStatus();
        }
        res->set_object_available(true);
        res->set_object_content(it->second);
        return absl::OkStatus();
      }
      case FleetRpc::kConfirmMessageReceived:
        s_->confirmed.push_back(
            static_cast<const proto::ConfirmMessageReceivedRequest&>(request).message_object_id());
        return absl::OkStatus();
      case FleetRpc::kPushMessages: {
        const auto& req = static_cast<const proto::PushMessagesRequest&>(request);
        s_->pushed.push_back(req);
        auto* res = static_cast<proto::PushMessagesResponse*>(response);
        for (const auto& id : PostOrderObjectIds(req.message_object_trees(0)))
          res->add_objects_to_push(id);
        res->set_session_id("session-1");
        (*res->mutable_results())[req.messages_list(0).metadata().message_id()] = 0;
        return absl::OkStatus();
      }
      case FleetRpc::kPushObject:
        s_->pushed_objects.push_back(static_cast<const proto::PushObjectRequest&>(request));
        static_cast<proto::PushObjectResponse*>(response)->set_stored(true);
        return absl::OkStatus();
      case FleetRpc::kDeactivateNode:
      case FleetRpc::kUnregisterNode:
      case FleetRpc::kGetRun:
      case FleetRpc::kGetFab:
        return absl::OkStatus();
    }
    return absl::InternalError("unknown rpc");
  }

  void CancelInFlight() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    ++s_->cancelled;
  }

 private:
  std::shared_ptr<FakeState> s_;
};

// Adds one to every element; fails when the config says so.
class PlusOneClient : public Client {
 public:
  absl::StatusOr<FitRes> Fit(const FitIns& ins) override {
    ++fits;
    if (ins.config.Contains("fail")) return absl::InternalError("asked to fail");
    FitRes res{common::SuccessStatus(), {}, 5, {{"seen", static_cast<int64_t>(fits)}}};
    for (const NDArray& a : *ins.parameters) {
      NDArray b = a;
      for (float& v : b.mutable_values<float>()) v += 1;
      res.parameters.push_back(std::move(b));
    }
    return res;
  }
  std::atomic<int> fits{0};
};

proto::Message TrainInstruction(uint64_t dst, std::vector<float> values, bool fail = false) {
  proto::Message m;
  auto* meta = m.mutable_metadata();
  meta->set_run_id(7);
  meta->set_src_node_id(1);
  meta->set_dst_node_id(dst);
  meta->set_group_id("");
  meta->set_message_type("train");
  meta->set_created_at(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  meta->set_ttl(3600);
  meta->set_src_task_id(77);
  proto::ArrayRecord arrays;
  auto* item = arrays.add_items();
  item->set_key("w");
  *item->mutable_value() =
      *ArrayFromNDArray(*NDArray::FromVector<float>({static_cast<int64_t>(values.size())}, values),
                        ArrayStyle::kTyped);
  AddArrayRecord(m.mutable_content(), "arrays", arrays);
  proto::ConfigRecord config;
  AddConfig(&config, "server-round", int64_t{1});
  if (fail) AddConfig(&config, "fail", true);
  AddConfigRecord(m.mutable_content(), "config", config);
  return m;
}

class FleetTransportTest : public ::testing::Test {
 protected:
  FleetTransportTest() : state_(std::make_shared<FakeState>()) {
    options_.server_address = "fake:1";
    options_.transport = TransportKind::kGrpcRere;
    options_.insecure = true;
    options_.name = "test-node";
    options_.jitter_seed = 1;
    options_.retry.initial_backoff = absl::Milliseconds(5);
    options_.retry.max_backoff = absl::Milliseconds(20);
    options_.retry.max_elapsed = absl::Seconds(2);
    fleet_.heartbeat_interval = absl::Seconds(10);
    fleet_.poll_interval = absl::Milliseconds(5);
    fleet_.pull_initial_backoff = absl::Milliseconds(5);
    fleet_.pull_max_backoff = absl::Milliseconds(20);
  }
  ~FleetTransportTest() override { (void)Finish(); }

  void Start() {
    auto state = state_;
    FleetApiFactory factory = [state](const ConnectionOptions&,
                                      const NodeKey&) -> absl::StatusOr<FleetApiPtr> {
      return FleetApiPtr(std::make_unique<FakeFleetApi>(state));
    };
    PETAL_ASSERT_OK_AND_ASSIGN(transport_, MakeFleetTransport(options_, fleet_, factory));
    thread_ = std::thread([this] { result_ = transport_->Run(client_); });
  }
  absl::Status Finish() {
    if (thread_.joinable()) {
      transport_->Stop();
      thread_.join();
    }
    return result_;
  }
  absl::Status Join() {
    thread_.join();
    return result_;
  }

  std::shared_ptr<FakeState> state_;
  ConnectionOptions options_;
  FleetOptions fleet_;
  PlusOneClient client_;
  TransportPtr transport_;
  std::thread thread_;
  absl::Status result_;
};

TEST_F(FleetTransportTest, RunsTheWholeNodeSequence) {
  proto::Message instruction = TrainInstruction(kFirstNodeId, {1, 2, 3});
  state_->Enqueue(instruction);
  const std::string ins_id = state_->pending.front().first.metadata().message_id();
  // The array's only chunk is "not yet available" twice.
  DeflatedMessage d = *DeflateMessage(instruction);
  state_->unavailable[d.objects[0].id] = 2;
  Start();
  ASSERT_TRUE(state_->WaitFor([&] {
    return !state_->pushed.empty() &&
           state_->pushed_objects.size() ==
               PostOrderObjectIds(state_->pushed[0].message_object_trees(0)).size();
  }));
  ASSERT_TRUE(state_->WaitFor([&] { return state_->heartbeats >= 1; }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));

  std::lock_guard<std::mutex> lock(state_->mu);
  auto& calls = state_->calls;
  ASSERT_GE(calls.size(), 4u);
  EXPECT_EQ(calls[0], FleetRpc::kRegisterNode);
  EXPECT_EQ(calls[1], FleetRpc::kActivateNode);
  EXPECT_EQ(state_->Count(FleetRpc::kPullObject), static_cast<int>(d.objects.size()) + 2);
  EXPECT_EQ(state_->confirmed, std::vector<std::string>{ins_id});
  EXPECT_EQ(calls[calls.size() - 2], FleetRpc::kDeactivateNode);
  EXPECT_EQ(calls.back(), FleetRpc::kUnregisterNode);
  EXPECT_GE(state_->cancelled, 1);

  // The reply follows Flower's validation rules.
  ASSERT_EQ(state_->pushed.size(), 1u);
  const proto::PushMessagesRequest& push = state_->pushed[0];
  EXPECT_EQ(push.node().node_id(), kFirstNodeId);
  ASSERT_EQ(push.messages_list_size(), 1);
  const proto::Metadata& meta = push.messages_list(0).metadata();
  EXPECT_EQ(meta.run_id(), 7u);
  EXPECT_EQ(meta.src_node_id(), kFirstNodeId);
  EXPECT_EQ(meta.dst_node_id(), 1u);
  EXPECT_EQ(meta.reply_to_message_id(), ins_id);
  EXPECT_EQ(meta.message_type(), "train");
  EXPECT_FALSE(meta.has_src_task_id());
  EXPECT_TRUE(meta.has_dst_task_id());
  EXPECT_EQ(meta.dst_task_id(), 77u);
  EXPECT_GT(meta.ttl(), 0);
  EXPECT_LE(meta.created_at() + meta.ttl(),
            instruction.metadata().created_at() + instruction.metadata().ttl() + 1e-6);
  EXPECT_EQ(meta.message_id(), push.message_object_trees(0).object_id());
  EXPECT_TRUE(push.messages_list(0).has_content());
  EXPECT_EQ(push.messages_list(0).content().items_size(), 0);  // content travels as objects
  ASSERT_EQ(push.clientapp_runtime_list_size(), 1);

  // Every object was pushed once, with the session id; they
  // rebuild the reply.
  ObjectContents contents;
  std::vector<std::string> order;
  for (const auto& o : state_->pushed_objects) {
    EXPECT_EQ(o.session_id(), "session-1");
    EXPECT_EQ(o.run_id(), 7u);
    EXPECT_EQ(ObjectId(o.object_content()), o.object_id());
    order.push_back(o.object_id());
    contents[o.object_id()] = o.object_content();
  }
  // Two pushes run at a time (like Flower), so only the set is fixed.
  std::vector<std::string> expected = PostOrderObjectIds(push.message_object_trees(0));
  EXPECT_THAT(order, ::testing::UnorderedElementsAreArray(expected));
  PETAL_ASSERT_OK_AND_ASSIGN(proto::Message reply,
                             InflateMessage(push.message_object_trees(0), contents));
  const auto* arrays = FindRecord(reply.content(), "arrays");
  ASSERT_NE(arrays, nullptr);
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray w, NDArrayFromArray(arrays->array_record().items(0).value()));
  EXPECT_EQ(w, *NDArray::FromVector<float>({3}, {2, 3, 4}));
  EXPECT_EQ(arrays->array_record().items(0).key(), "w");
  const auto* metrics = FindRecord(reply.content(), "metrics");
  ASSERT_NE(metrics, nullptr);
  EXPECT_EQ(metrics->metric_record().items(0).key(), "num-examples");
  EXPECT_EQ(metrics->metric_record().items(0).value().sint64(), 5);

  TransportStats stats = transport_->stats();
  EXPECT_EQ(stats.sessions, 1);
  EXPECT_EQ(stats.instructions, 1);
  EXPECT_EQ(stats.failed_instructions, 0);
  EXPECT_GT(stats.bytes_received, 0);
  EXPECT_GT(stats.bytes_sent, 0);
}

TEST_F(FleetTransportTest, ClientFailuresBecomeErrorRepliesAndTheNodeKeepsServing) {
  state_->Enqueue(TrainInstruction(kFirstNodeId, {1}, /*fail=*/true));
  state_->Enqueue(TrainInstruction(kFirstNodeId, {2}));
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return state_->pushed.size() >= 2; }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  const proto::Message& failed = state_->pushed[0].messages_list(0);
  ASSERT_TRUE(failed.has_error());
  EXPECT_FALSE(failed.has_content());
  EXPECT_EQ(failed.error().code(), kErrorClientAppRaisedException);
  EXPECT_THAT(failed.error().reason(), HasSubstr("asked to fail"));
  EXPECT_EQ(state_->pushed[0].message_object_trees(0).children_size(), 0);
  EXPECT_TRUE(state_->pushed[1].messages_list(0).has_content());
  EXPECT_EQ(transport_->stats().failed_instructions, 1);
}

TEST_F(FleetTransportTest, MissingObjectsGetAMessageUnavailableReply) {
  proto::Message instruction = TrainInstruction(kFirstNodeId, {1});
  state_->Enqueue(instruction);
  DeflatedMessage d = *DeflateMessage(instruction);
  state_->store.erase(d.objects[0].id);
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(client_.fits.load(), 0);
  const proto::Message& reply = state_->pushed[0].messages_list(0);
  ASSERT_TRUE(reply.has_error());
  EXPECT_EQ(reply.error().code(), kErrorMessageUnavailable);
  EXPECT_THAT(reply.error().reason(), HasSubstr("could not be found"));
  EXPECT_TRUE(state_->confirmed.empty());
}

TEST_F(FleetTransportTest, ObjectsThatNeverBecomeAvailableHitTheTryLimit) {
  fleet_.pull_max_tries = 3;
  proto::Message instruction = TrainInstruction(kFirstNodeId, {1});
  state_->Enqueue(instruction);
  DeflatedMessage d = *DeflateMessage(instruction);
  state_->unavailable[d.objects[0].id] = 1000;
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->pulls[d.objects[0].id], 3);
  EXPECT_THAT(state_->pushed[0].messages_list(0).error().reason(),
              HasSubstr("still unavailable after 3 tries"));
}

TEST_F(FleetTransportTest, ExpiredInstructionsGetNoReply) {
  proto::Message instruction = TrainInstruction(kFirstNodeId, {1});
  instruction.mutable_metadata()->set_created_at(
      absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()) - 100);
  instruction.mutable_metadata()->set_ttl(50);
  state_->Enqueue(instruction);
  state_->Enqueue(TrainInstruction(kFirstNodeId, {2}));
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(client_.fits.load(), 2);
  ASSERT_EQ(state_->pushed.size(), 1u);  // only the live one
}

TEST_F(FleetTransportTest, RunNoLongerRunningDropsTheMessage) {
  state_->Enqueue(TrainInstruction(kFirstNodeId, {1}));
  state_->injected[FleetRpc::kPullObject].push_back(
      MakeFleetError(absl::StatusCode::kPermissionDenied, FleetRpc::kPullObject,
                     R"({"code": 2007, "detail": "x"})"));
  state_->Enqueue(TrainInstruction(kFirstNodeId, {2}));
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->pushed.size(), 1u);
  EXPECT_EQ(client_.fits.load(), 1);
}

TEST_F(FleetTransportTest, TransientErrorsAreRetriedCallByCall) {
  for (int i = 0; i < 3; ++i) {
    state_->injected[FleetRpc::kPullMessages].push_back(
        absl::UnavailableError("superlink restarting"));
    state_->injected[FleetRpc::kPushMessages].push_back(absl::DeadlineExceededError("slow"));
  }
  state_->Enqueue(TrainInstruction(kFirstNodeId, {1}));
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->Count(FleetRpc::kRegisterNode), 1);  // no new session was needed
  EXPECT_GE(state_->Count(FleetRpc::kPushMessages), 4);
  EXPECT_EQ(state_->pushed.size(), 1u);
}

TEST_F(FleetTransportTest, RegistersAgainWhenTheSuperLinkForgetsTheNode) {
  state_->forget_nodes_on_heartbeat = true;
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return state_->Count(FleetRpc::kActivateNode) >= 2; }));
  // The new session serves instructions addressed to the new node id.
  state_->Enqueue(TrainInstruction(kFirstNodeId + 1, {1}));
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->Count(FleetRpc::kRegisterNode), 2);
  EXPECT_EQ(state_->pushed[0].node().node_id(), kFirstNodeId + 1);
  EXPECT_EQ(transport_->stats().sessions, 2);
}

TEST_F(FleetTransportTest, AKeyStillRegisteredIsReactivated) {
  // "Public key already in use": the node activates the existing registration.
  state_->already_registered_id = 555;
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return state_->Count(FleetRpc::kPullMessages) >= 1; }));
  state_->Enqueue(TrainInstruction(555, {1}));
  ASSERT_TRUE(state_->WaitFor([&] { return !state_->pushed.empty(); }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->Count(FleetRpc::kRegisterNode), 1);
  EXPECT_EQ(state_->Count(FleetRpc::kActivateNode), 1);
  EXPECT_EQ(state_->pushed[0].node().node_id(), 555u);
}

TEST_F(FleetTransportTest, RefusedSelfRegistrationIsFatalWithAHint) {
  state_->registration_disabled = true;
  Start();
  absl::Status status = Join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition,
                               HasSubstr("flwr supernode register")));
  EXPECT_EQ(FlowerErrorCode(status), kFlowerRegistrationDisabled);
}

TEST_F(FleetTransportTest, GivesUpWhenTheRetryBudgetIsSpent) {
  state_->down = true;
  options_.retry.max_elapsed = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  Start();
  absl::Status status = Join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("gave up reaching the SuperLink")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(transport_->stats().connect_attempts, 2);
  EXPECT_EQ(transport_->stats().sessions, 0);
}

TEST_F(FleetTransportTest, StopIsPromptAndLeavesCleanly) {
  fleet_.poll_interval = absl::Seconds(30);  // a long wait that Stop must interrupt
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return state_->Count(FleetRpc::kPullMessages) >= 1; }));
  const absl::Time start = absl::Now();
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->Count(FleetRpc::kDeactivateNode), 1);
  EXPECT_EQ(state_->Count(FleetRpc::kUnregisterNode), 1);
}

TEST_F(FleetTransportTest, PreRegisteredKeysSkipRegistration) {
  PETAL_ASSERT_OK_AND_ASSIGN(NodeKey key, NodeKey::Generate());
  PETAL_ASSERT_OK_AND_ASSIGN(std::string pem, key.PrivateKeyPem());
  std::string path = ::petal::testing::ScratchPath("fleet_preregistered_key.pem").string();
  ASSERT_TRUE(common::WriteFileAtomically(path, pem).ok());
  fleet_.auth_private_key = path;
  state_->keys[key.public_key_pem()] = 99;  // registered with `flwr supernode register`
  Start();
  ASSERT_TRUE(state_->WaitFor([&] { return state_->Count(FleetRpc::kPullMessages) >= 1; }));
  EXPECT_THAT(Finish(), StatusIs(absl::StatusCode::kCancelled));
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->Count(FleetRpc::kRegisterNode), 0);
  EXPECT_EQ(state_->Count(FleetRpc::kUnregisterNode), 0);
  EXPECT_EQ(state_->Count(FleetRpc::kDeactivateNode), 1);
  std::filesystem::remove(path);
}

TEST(FleetOptionsTest, ValidatesRangesAndReadsYaml) {
  FleetOptions options;
  PETAL_EXPECT_OK(options.Validate());
  options.heartbeat_interval = absl::Seconds(5);
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("heartbeat_interval")));
  options = FleetOptions();
  options.pull_jitter = 1.5;
  EXPECT_THAT(options.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pull_jitter")));

  PETAL_ASSERT_OK_AND_ASSIGN(
      common::YamlConfig yaml,
      common::YamlConfig::Parse(
          "transport:\n  fleet:\n    api: grpc\n    heartbeat_interval_s: 60\n"
          "    poll_interval_s: 0.5\n    auth_private_key: /keys/node\n"));
  common::ConfigReader reader(yaml);
  FleetOptions read;
  ReadFleetOptions(reader, "transport.fleet", &read);
  PETAL_EXPECT_OK(reader.Finish());
  EXPECT_EQ(read.api, FleetApiKind::kGrpc);
  EXPECT_EQ(read.heartbeat_interval, absl::Seconds(60));
  EXPECT_EQ(read.poll_interval, absl::Milliseconds(500));
  EXPECT_EQ(read.auth_private_key, "/keys/node");

  PETAL_ASSERT_OK_AND_ASSIGN(
      common::YamlConfig bad,
      common::YamlConfig::Parse("fleet:\n  api: rest\n  heartbeat_interval_s: 5\n"));
  common::ConfigReader bad_reader(bad);
  FleetOptions ignored;
  ReadFleetOptions(bad_reader, "fleet", &ignored);
  EXPECT_THAT(bad_reader.Finish(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fleet.api")));
}

TEST(FleetTransportFactoryTest, MakeTransportOffersTheFleetApi) {
  ConnectionOptions options;
  options.server_address = "127.0.0.1:1";
  options.transport = TransportKind::kGrpcRere;
  options.insecure = true;
  PETAL_EXPECT_OK(MakeTransport(options).status());
  FleetOptions fleet;
  fleet.poll_interval = absl::ZeroDuration();
  EXPECT_THAT(MakeFleetTransport(options, fleet), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace petal::client::fleet
