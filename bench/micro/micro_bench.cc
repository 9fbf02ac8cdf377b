// petal_micro_bench: Google Benchmark microbenchmarks of the byte-moving and
// aggregation kernels, each beside a plain memcpy of the same bytes (the
// physical ceiling of the machine for that working set).
//
//   petal_micro_bench [--benchmark_filter=REGEX] [--benchmark_format=json] ...
//
// Benchmarks (every one reports bytes_per_second over its INPUT bytes):
//   BM_NpyEncode/<MiB>, BM_NpyDecode/<MiB>      one float32 array of <MiB> MiB
//   BM_MemcpyNpy/<MiB>                          memcpy of the same bytes
//   BM_FedAvg/<K>/<P>/<acc>                     K results of P float32 folded into
//                                               strategy::WeightedAverage one at a time
//                                               and Result(), as petal-server streams
//                                               them (acc 0 = float64, 1 = native)
//   BM_FedAvgDecode/<K>/<P>                     the same, each result first decoded from
//                                               its .npy bytes (what arrives on the wire),
//                                               taken over without a copy as petal-server
//                                               does
//   BM_FedAdam/<K>/<P>                          FedAvg (float64) + one FedOptStep(kAdam)
//   BM_Median/<K>/<P>, BM_Krum/<K>/<P>          robust aggregation (all K held)
//   BM_MemcpyAgg/<K>/<P>                        K memcpys of P float32 into one buffer
//
// Results are drawn from a pool of kPool distinct random arrays built before
// timing (result k is pool[k % kPool]), so K = 100 x P = 10M (4 GB of results)
// streams through 320 MB instead of allocating 4 GB, the way petal-server drops
// each result after folding it in. The pool is larger than L2 but not than this
// machine's reported L3 (480 MiB): memcpy sees the same caches. Median and Krum hold the K result pointers (into the
// pool) at once, as their definitions need.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/ndarray.h"
#include "common/npy.h"
#include "strategy/aggregate.h"

namespace petal::bench {
namespace {

using common::DType;
using common::NDArray;
using common::NDArrays;

constexpr int64_t kPool = 8;
constexpr int64_t kMiB = 1 << 20;

NDArray RandomArray(int64_t elements, uint64_t seed) {
  NDArray a = NDArray::Zeros(DType::kFloat32, {elements}).value();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : a.mutable_values<float>()) v = dist(rng);
  return a;
}

// kPool distinct random results of `params` float32 (built before timing).
std::vector<NDArrays> Pool(int64_t params) {
  std::vector<NDArrays> pool;
  for (int64_t r = 0; r < kPool; ++r) pool.push_back({RandomArray(params, 100 + r)});
  return pool;
}

std::vector<std::string> EncodedPool(int64_t params) {
  std::vector<std::string> pool;
  for (int64_t r = 0; r < kPool; ++r) pool.push_back(common::EncodeNpy(RandomArray(params, 100 + r)));
  return pool;
}

void Fail(benchmark::State& state, const absl::Status& s) {
  state.SkipWithError(std::string(s.message()).c_str());
}

// --- npy codec -------------------------------------------------------------

void BM_NpyEncode(benchmark::State& state) {
  const int64_t bytes = state.range(0) * kMiB;
  const NDArray a = RandomArray(bytes / 4, 1);
  for (auto _ : state) {
    std::string out = common::EncodeNpy(a);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_NpyDecode(benchmark::State& state) {
  const int64_t bytes = state.range(0) * kMiB;
  const std::string encoded = common::EncodeNpy(RandomArray(bytes / 4, 1));
  for (auto _ : state) {
    absl::StatusOr<NDArray> a = common::DecodeNpy(std::string_view(encoded));
    if (!a.ok()) return Fail(state, a.status());
    benchmark::DoNotOptimize(a->data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_MemcpyNpy(benchmark::State& state) {
  const int64_t bytes = state.range(0) * kMiB;
  const NDArray a = RandomArray(bytes / 4, 1);
  for (auto _ : state) {
    // A fresh destination each time, as encode/decode allocate theirs.
    auto out = std::make_unique_for_overwrite<char[]>(bytes);
    std::memcpy(out.get(), a.data(), bytes);
    benchmark::DoNotOptimize(out.get());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

// --- aggregation -----------------------------------------------------------

void BM_FedAvg(benchmark::State& state) {
  const int64_t k = state.range(0);
  const int64_t p = state.range(1);
  const auto acc = state.range(2) == 0 ? strategy::Accumulation::kFloat64 : strategy::Accumulation::kNative;
  const std::vector<NDArrays> pool = Pool(p);
  for (auto _ : state) {
    strategy::WeightedAverage avg(acc, strategy::IntegerPolicy::kRound);
    for (int64_t i = 0; i < k; ++i) {
      if (absl::Status s = avg.Add(pool[i % kPool], 1 + i % 50); !s.ok()) return Fail(state, s);
    }
    absl::StatusOr<NDArrays> out = avg.Result();
    if (!out.ok()) return Fail(state, out.status());
    benchmark::DoNotOptimize((*out)[0].data());
  }
  state.SetBytesProcessed(state.iterations() * k * p * 4);
}

void BM_FedAvgDecode(benchmark::State& state) {
  const int64_t k = state.range(0);
  const int64_t p = state.range(1);
  const std::vector<std::string> pool = EncodedPool(p);
  for (auto _ : state) {
    strategy::WeightedAverage avg(strategy::Accumulation::kFloat64, strategy::IntegerPolicy::kRound);
    for (int64_t i = 0; i < k; ++i) {
      // petal-server moves each FitRes's parsed bytes into DecodeNpy (serde's
      // FitResFromProto(&&)), which views little-endian C-order data without a
      // copy. The pool is reused, so each result's bytes are first copied with the
      // timer paused: that copy stands for the protobuf parse, outside the
      // measurement on both sides (Flower's aggregate_inplace also starts from
      // the parsed bytes).
      state.PauseTiming();
      std::string received = pool[i % kPool];
      state.ResumeTiming();
      absl::StatusOr<NDArray> a = common::DecodeNpy(std::move(received));
      if (!a.ok()) return Fail(state, a.status());
      NDArrays arrays;
      arrays.push_back(*std::move(a));
      if (absl::Status s = avg.Add(arrays, 1 + i % 50); !s.ok()) return Fail(state, s);
    }
    absl::StatusOr<NDArrays> out = avg.Result();
    if (!out.ok()) return Fail(state, out.status());
    benchmark::DoNotOptimize((*out)[0].data());
  }
  state.SetBytesProcessed(state.iterations() * k * p * 4);
}

void BM_FedAdam(benchmark::State& state) {
  const int64_t k = state.range(0);
  const int64_t p = state.range(1);
  const std::vector<NDArrays> pool = Pool(p);
  const NDArrays x = {RandomArray(p, 99)};
  // Flower's FedAdam defaults: eta 0.1, beta_1 0.9, beta_2 0.99, tau 1e-9.
  const strategy::FedOptHyperparameters hp{.eta = 0.1, .beta_1 = 0.9, .beta_2 = 0.99, .tau = 1e-9};
  NDArrays m;
  NDArrays v;
  int64_t round = 1;
  for (auto _ : state) {
    strategy::WeightedAverage avg(strategy::Accumulation::kFloat64, strategy::IntegerPolicy::kRound);
    for (int64_t i = 0; i < k; ++i) {
      if (absl::Status s = avg.Add(pool[i % kPool], 1 + i % 50); !s.ok()) return Fail(state, s);
    }
    absl::StatusOr<NDArrays> mean = avg.Result();
    if (!mean.ok()) return Fail(state, mean.status());
    absl::StatusOr<NDArrays> next =
        strategy::FedOptStep(strategy::ServerOptimizer::kAdam, hp,
                             strategy::AdamStepSize(hp.eta, hp.beta_1, hp.beta_2, round++), x,
                             *mean, &m, &v);
    if (!next.ok()) return Fail(state, next.status());
    benchmark::DoNotOptimize((*next)[0].data());
  }
  state.SetBytesProcessed(state.iterations() * k * p * 4);
}

std::vector<const NDArrays*> Held(int64_t k, const std::vector<NDArrays>& pool) {
  std::vector<const NDArrays*> results;
  for (int64_t i = 0; i < k; ++i) results.push_back(&pool[i % kPool]);
  return results;
}

void BM_Median(benchmark::State& state) {
  const int64_t k = state.range(0);
  const int64_t p = state.range(1);
  const std::vector<NDArrays> pool = Pool(p);
  const auto results = Held(k, pool);
  for (auto _ : state) {
    absl::StatusOr<NDArrays> out = strategy::AggregateMedian(results, strategy::IntegerPolicy::kRound);
    if (!out.ok()) return Fail(state, out.status());
    benchmark::DoNotOptimize((*out)[0].data());
  }
  state.SetBytesProcessed(state.iterations() * k * p * 4);
}

// Flower's Krum defaults in the server: num_malicious_clients 0, num_clients_to_keep 0
// (the single best result).
void BM_Krum(benchmark::State& state) {
  const int64_t k = state.range(0);
  const int64_t p = state.range(1);
  const std::vector<NDArrays> pool = Pool(p);
  const auto results = Held(k, pool);
  for (auto _ : state) {
    absl::StatusOr<std::vector<double>> scores = strategy::KrumScores(results, 0);
    if (!scores.ok()) return Fail(state, scores.status());
    absl::StatusOr<std::vector<size_t>> keep = strategy::KrumSelect(*scores, 0);
    if (!keep.ok()) return Fail(state, keep.status());
    // The chosen result is the new model (a copy, like Flower's list of arrays).
    NDArrays chosen = *results[keep->front()];
    benchmark::DoNotOptimize(chosen[0].data());
  }
  state.SetBytesProcessed(state.iterations() * k * p * 4);
}

void BM_MemcpyAgg(benchmark::State& state) {
  const int64_t k = state.range(0);
  const int64_t p = state.range(1);
  const std::vector<NDArrays> pool = Pool(p);
  auto out = std::make_unique_for_overwrite<float[]>(p);
  for (auto _ : state) {
    for (int64_t i = 0; i < k; ++i) std::memcpy(out.get(), pool[i % kPool][0].data(), p * 4);
    benchmark::DoNotOptimize(out.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * k * p * 4);
}

void NpySizes(benchmark::internal::Benchmark* b) {
  for (int64_t mib : {1, 16, 256}) b->Arg(mib);
  b->ArgName("MiB")->UseRealTime()->Unit(benchmark::kMillisecond);
}

void AggSizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"K", "P"});
  for (int64_t p : {100'000, 1'000'000, 10'000'000}) {  // 100k: the CI smoke size
    for (int64_t k : {10, 100}) b->Args({k, p});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_NpyEncode)->Apply(NpySizes);
BENCHMARK(BM_NpyDecode)->Apply(NpySizes);
BENCHMARK(BM_MemcpyNpy)->Apply(NpySizes);
BENCHMARK(BM_FedAvg)->ArgNames({"K", "P", "native"})
    ->ArgsProduct({{10, 100}, {100'000, 1'000'000, 10'000'000}, {0, 1}})
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FedAvgDecode)->Apply(AggSizes);
BENCHMARK(BM_FedAdam)->Apply(AggSizes);
BENCHMARK(BM_MemcpyAgg)->Apply(AggSizes);
// Median and Krum hold every result; Krum is O(K^2 P): 10M only with K = 10.
BENCHMARK(BM_Median)->Apply(AggSizes);
BENCHMARK(BM_Krum)->ArgNames({"K", "P"})
    ->Args({10, 100'000})->Args({10, 1'000'000})->Args({100, 1'000'000})->Args({10, 10'000'000})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace petal::bench

BENCHMARK_MAIN();
