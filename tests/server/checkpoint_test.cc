#include "server/checkpoint.h"

#include <unistd.h>

#include <fmt/format.h>
#include <filesystem>
#include <fstream>

#include "common/file_util.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::server {
namespace {

namespace fs = std::filesystem;
using common::NDArray;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("petal_ckpt_{}_{}", ::getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Checkpoint Make(int64_t round) {
    Checkpoint c;
    c.round = round;
    c.strategy = "fedadam";
    c.parameters = {NDArray::FromVector<float>({2, 2}, {1, 2, 3, static_cast<float>(round)}).value(),
                    NDArray::FromVector<int64_t>({1}, {7}).value()};
    c.strategy_state.arrays.emplace_back("m.0", NDArray::FromVector<float>({2}, {0.5f, 0.25f}).value());
    c.strategy_state.scalars.Set("step", int64_t{round});
    RoundRecord r;
    r.round = round;
    r.fit_results = 3;
    r.loss_distributed = 0.5;
    r.fit_metrics.Set("acc", 0.75);
    r.failures.push_back({"fit", "abc", "DEADLINE_EXCEEDED: late"});
    c.history.Add(r);
    return c;
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, RoundTripsEverything) {
  Checkpoint c = Make(3);
  ASSERT_THAT(SaveCheckpoint(dir_.string(), c), ::petal::testing::IsOk());
  PETAL_ASSERT_OK_AND_ASSIGN(Checkpoint back, LoadCheckpoint(dir_.string()));
  EXPECT_EQ(back.round, 3);
  EXPECT_EQ(back.strategy, "fedadam");
  EXPECT_EQ(back.parameters, c.parameters);
  ASSERT_EQ(back.strategy_state.arrays.size(), 1u);
  EXPECT_EQ(back.strategy_state.arrays[0].first, "m.0");
  EXPECT_EQ(back.strategy_state.arrays[0].second, c.strategy_state.arrays[0].second);
  EXPECT_EQ(back.strategy_state.scalars, c.strategy_state.scalars);
  ASSERT_EQ(back.history.rounds().size(), 1u);
  EXPECT_EQ(back.history.ToJson(), c.history.ToJson());
}

TEST_F(CheckpointTest, KeepsOnlyTheNewestRoundFiles) {
  for (int64_t r = 1; r <= 5; ++r) ASSERT_THAT(SaveCheckpoint(dir_.string(), Make(r), 2), ::petal::testing::IsOk());
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_THAT(files, ::testing::ElementsAre("checkpoint.json", "round_000004.npz", "round_000005.npz"));
  PETAL_ASSERT_OK_AND_ASSIGN(Checkpoint back, LoadCheckpoint(dir_.string()));
  EXPECT_EQ(back.round, 5);
}

TEST_F(CheckpointTest, MissingAndDamagedCheckpointsAreClearErrors) {
  EXPECT_THAT(LoadCheckpoint(dir_.string()), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(SaveCheckpoint(dir_.string(), Make(2)), ::petal::testing::IsOk());
  // A truncated arrays file.
  const fs::path npz = dir_ / "round_000002.npz";
  fs::resize_file(npz, fs::file_size(npz) / 2);
  EXPECT_THAT(LoadCheckpoint(dir_.string()), StatusIs(absl::StatusCode::kInvalidArgument));
  // A corrupt index.
  ASSERT_THAT(common::WriteFileAtomically((dir_ / "checkpoint.json").string(), "{\"format\": 1"),
              ::petal::testing::IsOk());
  EXPECT_THAT(LoadCheckpoint(dir_.string()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("checkpoint.json")));
  ASSERT_THAT(common::WriteFileAtomically((dir_ / "checkpoint.json").string(),
                                          R"({"format": "other", "round": 1})"),
              ::petal::testing::IsOk());
  EXPECT_THAT(LoadCheckpoint(dir_.string()), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown format")));
}

TEST_F(CheckpointTest, IndexMustAgreeWithTheArrays) {
  ASSERT_THAT(SaveCheckpoint(dir_.string(), Make(2)), ::petal::testing::IsOk());
  PETAL_ASSERT_OK_AND_ASSIGN(std::string text, common::ReadFileToString((dir_ / "checkpoint.json").string()));
  const std::string needle = "\"num_parameters\": 2";
  const size_t at = text.find(needle);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, needle.size(), "\"num_parameters\": 3");
  ASSERT_THAT(common::WriteFileAtomically((dir_ / "checkpoint.json").string(), text), ::petal::testing::IsOk());
  EXPECT_THAT(LoadCheckpoint(dir_.string()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds 2 global arrays, the index says 3")));
}

}  // namespace
}  // namespace petal::server
