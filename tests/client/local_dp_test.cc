#include "client/local_dp.h"

#include <cmath>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace petal::client {
namespace {

using ::petal::client::testing::Floats;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

LocalDpOptions Options(double c, double sigma) {
  LocalDpOptions o;
  o.enabled = true;
  o.clipping_norm = c;
  o.noise_multiplier = sigma;
  o.delta = 1e-5;
  return o;
}

TEST(LocalDpOptionsTest, ValidateNamesTheField) {
  EXPECT_THAT(Options(1, 1).Validate(), IsOk());
  EXPECT_THAT(Options(0, 1).Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("privacy.clipping_norm")));
  EXPECT_THAT(Options(1, -1).Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("privacy.noise_multiplier")));
  LocalDpOptions o = Options(1, 1);
  o.delta = 1.0;
  EXPECT_THAT(o.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("privacy.delta")));
}

// eps(delta) = min over alpha > 1 of alpha * S + log(1/delta) / (alpha - 1), by brute force.
double BruteForceEpsilon(double slope, double delta) {
  double best = INFINITY;
  for (double a = 1.0001; a < 2000.0; a *= 1.0001) {
    best = std::min(best, a * slope + std::log(1.0 / delta) / (a - 1.0));
  }
  return best;
}

TEST(RdpAccountantTest, OneGaussianRoundMatchesTheClosedForm) {
  RdpAccountant acc;
  EXPECT_EQ(acc.Epsilon(1e-5), 0.0);
  acc.AddRounds(/*noise_multiplier=*/1.0);
  // Sensitivity 2C, noise sigma*C: RDP(alpha) = alpha * 2 / sigma^2.
  EXPECT_DOUBLE_EQ(acc.rdp_slope(), 2.0);
  const double want = 2.0 + 2.0 * std::sqrt(2.0 * std::log(1e5));
  EXPECT_NEAR(acc.Epsilon(1e-5), want, 1e-12);
  EXPECT_NEAR(acc.Epsilon(1e-5), 11.5970, 1e-4);
  EXPECT_NEAR(acc.Epsilon(1e-5), BruteForceEpsilon(2.0, 1e-5), 1e-6);
  EXPECT_NEAR(acc.OptimalOrder(1e-5), 1.0 + std::sqrt(std::log(1e5) / 2.0), 1e-12);
}

TEST(RdpAccountantTest, RoundsComposeAndMixedNoiseAddsUp) {
  RdpAccountant a;
  a.AddRounds(2.0, 3);
  RdpAccountant b;
  for (int i = 0; i < 3; ++i) b.AddRounds(2.0);
  EXPECT_EQ(a.rounds(), 3);
  EXPECT_DOUBLE_EQ(a.Epsilon(1e-6), b.Epsilon(1e-6));
  a.AddRounds(4.0);
  const double slope = 3 * 2.0 / 4.0 + 2.0 / 16.0;
  EXPECT_DOUBLE_EQ(a.rdp_slope(), slope);
  EXPECT_NEAR(a.Epsilon(1e-6), BruteForceEpsilon(slope, 1e-6), 1e-6);
  // More rounds never cost less.
  EXPECT_GT(a.Epsilon(1e-6), b.Epsilon(1e-6));
}

TEST(RdpAccountantTest, SerializesAndRejectsGarbage) {
  RdpAccountant a;
  a.AddRounds(1.3, 7);
  PETAL_ASSERT_OK_AND_ASSIGN(RdpAccountant back, RdpAccountant::Parse(a.Serialize()));
  EXPECT_EQ(back.rounds(), 7);
  EXPECT_DOUBLE_EQ(back.rdp_slope(), a.rdp_slope());
  for (const char* bad : {"", "rdp-gaussian-v1 3", "other 1 2", "rdp-gaussian-v1 -1 0",
                          "rdp-gaussian-v1 2 nan", "rdp-gaussian-v1 0 1.5"}) {
    EXPECT_THAT(RdpAccountant::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(LocalDpTest, ClipsTheUpdateToTheNorm) {
  LocalDp dp(Options(/*c=*/1.0, /*sigma=*/1e-9), /*seed=*/1);
  common::NDArrays reference{Floats({2}, {1.0f, 1.0f})};
  common::NDArrays trained{Floats({2}, {4.0f, 5.0f})};  // update (3, 4), norm 5
  PETAL_ASSERT_OK_AND_ASSIGN(DpRelease r, dp.Privatize(reference, &trained));
  EXPECT_DOUBLE_EQ(r.update_norm, 5.0);
  EXPECT_TRUE(r.clipped);
  EXPECT_NEAR(trained[0].values<float>()[0], 1.6, 1e-6);
  EXPECT_NEAR(trained[0].values<float>()[1], 1.8, 1e-6);
  EXPECT_EQ(dp.accountant().rounds(), 1);
}

TEST(LocalDpTest, SmallUpdatesAreNotScaledAndTheNormSpansAllArrays) {
  LocalDp dp(Options(10.0, 1e-9), 1);
  common::NDArrays reference{Floats({1}, {0.0f}), *common::NDArray::FromVector<double>({1}, {0.0})};
  common::NDArrays trained{Floats({1}, {3.0f}), *common::NDArray::FromVector<double>({1}, {4.0})};
  PETAL_ASSERT_OK_AND_ASSIGN(DpRelease r, dp.Privatize(reference, &trained));
  EXPECT_DOUBLE_EQ(r.update_norm, 5.0);
  EXPECT_FALSE(r.clipped);
  EXPECT_NEAR(trained[0].values<float>()[0], 3.0, 1e-6);
  EXPECT_NEAR(trained[1].values<double>()[0], 4.0, 1e-6);
}

TEST(LocalDpTest, NoiseHasTheConfiguredStandardDeviation) {
  const int n = 200000;
  LocalDp dp(Options(/*c=*/2.0, /*sigma=*/0.5), /*seed=*/7);  // std = 1.0
  common::NDArrays reference{Floats({n}, std::vector<float>(n, 0.0f))};
  common::NDArrays trained = reference;
  ASSERT_THAT(dp.Privatize(reference, &trained).status(), IsOk());
  double sum = 0, sq = 0;
  for (float x : trained[0].values<float>()) {
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sq / n - mean * mean), 1.0, 0.01);
}

TEST(LocalDpTest, SameSeedSameNoise) {
  common::NDArrays reference{Floats({3}, {1, 2, 3})};
  common::NDArrays a = reference;
  common::NDArrays b = reference;
  LocalDp one(Options(1, 1), 99);
  LocalDp two(Options(1, 1), 99);
  ASSERT_THAT(one.Privatize(reference, &a).status(), IsOk());
  ASSERT_THAT(two.Privatize(reference, &b).status(), IsOk());
  EXPECT_EQ(a[0], b[0]);
  EXPECT_FALSE(a[0] == reference[0]);
}

TEST(LocalDpTest, RejectsMismatchedOrNonFiniteArraysWithoutChangingThem) {
  LocalDp dp(Options(1, 1), 1);
  common::NDArrays reference{Floats({2}, {0, 0})};
  common::NDArrays fewer;
  EXPECT_THAT(dp.Privatize(reference, &fewer),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 reference arrays")));
  common::NDArrays reshaped{Floats({1, 2}, {0, 0})};
  EXPECT_THAT(dp.Privatize(reference, &reshaped),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array 0")));
  common::NDArrays ints{*common::NDArray::FromVector<int32_t>({2}, {0, 0})};
  common::NDArrays int_ref = ints;
  EXPECT_THAT(dp.Privatize(int_ref, &ints), StatusIs(absl::StatusCode::kInvalidArgument));
  common::NDArrays nan{Floats({2}, {0, NAN})};
  const common::NDArrays before = nan;
  EXPECT_THAT(dp.Privatize(reference, &nan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("element 1 is not finite")));
  EXPECT_EQ(nan[0].bytes(), before[0].bytes());
  EXPECT_EQ(dp.accountant().rounds(), 0);
}

}  // namespace
}  // namespace petal::client
