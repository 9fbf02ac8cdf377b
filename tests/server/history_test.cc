#include "server/history.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::server {
namespace {

using ::testing::HasSubstr;

History Sample() {
  History h;
  RoundRecord r1;
  r1.round = 1;
  r1.fit_sampled = 3;
  r1.fit_results = 2;
  r1.fit_failures = 1;
  r1.model_updated = true;
  r1.fit_metrics.Set("acc", 0.5);
  r1.loss_distributed = 0.25;
  r1.evaluate_metrics.Set("hr10", 0.1);
  r1.evaluate_metrics.Set("note", std::string("a,\"b\""));
  r1.failures.push_back({"fit", "c1", "DEADLINE_EXCEEDED: late"});
  RoundRecord r2;
  r2.round = 2;
  r2.fit_metrics.Set("acc", 0.75);
  r2.fit_metrics.Set("blob", common::Bytes{"\x01\xff"});
  r2.fit_metrics.Set("big", uint64_t{18446744073709551615ULL});
  r2.loss_centralized = 1.5;
  h.Add(r1);
  h.Add(r2);
  return h;
}

TEST(HistoryTest, JsonHasFlowerStyleSummaries) {
  nlohmann::json j = Sample().ToJson();
  EXPECT_EQ(j["losses_distributed"], nlohmann::json::parse("[[1, 0.25]]"));
  EXPECT_EQ(j["losses_centralized"], nlohmann::json::parse("[[2, 1.5]]"));
  EXPECT_EQ(j["metrics_distributed_fit"]["acc"], nlohmann::json::parse("[[1, 0.5], [2, 0.75]]"));
  EXPECT_EQ(j["rounds"][0]["failure_details"][0]["cid"], "c1");
  EXPECT_TRUE(j["rounds"][1]["evaluate"]["loss"].is_null());
}

TEST(HistoryTest, JsonRoundTrips) {
  History h = Sample();
  PETAL_ASSERT_OK_AND_ASSIGN(History back, History::FromJson(h.ToJson()));
  EXPECT_EQ(back.ToJson(), h.ToJson());
  EXPECT_EQ(back.rounds()[1].fit_metrics, h.rounds()[1].fit_metrics);
  EXPECT_THAT(History::FromJson(nlohmann::json::parse(R"({"rounds": [{"round": 1}]})")),
              ::petal::testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed history")));
}

TEST(HistoryTest, CsvHasOneRowPerRoundAndMetricColumns) {
  const std::string csv = Sample().ToCsv();
  EXPECT_THAT(csv, HasSubstr("round,fit_sampled,fit_results,fit_failures,model_updated,fit_seconds,"
                             "evaluate_sampled,evaluate_results,evaluate_failures,loss_distributed,"
                             "evaluate_seconds,loss_centralized,fit_acc,fit_big,fit_blob,evaluate_hr10,"
                             "evaluate_note\n"));
  EXPECT_THAT(csv, HasSubstr("\n1,3,2,1,true,0.000000,0,0,0,0.25,0.000000,,0.5,,,0.1,\"a,\"\"b\"\"\"\n"));
  EXPECT_THAT(csv, HasSubstr("\n2,0,0,0,false,0.000000,0,0,0,,0.000000,1.5,0.75,18446744073709551615,01ff,,\n"));
}

TEST(HistoryTest, TruncateAfterDropsLaterRounds) {
  History h = Sample();
  h.TruncateAfter(1);
  ASSERT_EQ(h.rounds().size(), 1u);
  EXPECT_EQ(h.rounds()[0].round, 1);
}

}  // namespace
}  // namespace petal::server
