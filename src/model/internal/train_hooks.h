// File: internal/train_hooks.h
//
// The federated hooks of local training, as small tensor functions (torch
// header: src/model and its tests only).
//   ProximalTerm: FedProx's mu/2 * sum_k ||w_k - g_k||^2 (squared L2 over all
//                 global arrays; g is frozen: no gradient flows into it).
//   ClipUpdate:   Flower's client-side fixed clipping of the update u = w - g:
//                 one L2 norm over all arrays, u *= min(1, C / norm), w = g + u.
//                 A zero norm leaves w unchanged (Python would divide by zero).
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <utility>
#include <vector>

namespace petal::model::internal {

inline torch::Tensor ProximalTerm(const std::vector<torch::Tensor>& weights,
                                  const std::vector<torch::Tensor>& reference, double mu) {
  torch::Tensor sum = torch::zeros({}, torch::kFloat32);
  for (size_t k = 0; k < weights.size(); ++k) {
    sum = sum + (weights[k] - reference[k].detach()).square().sum();
  }
  return sum * (mu / 2.0);
}

// ||w - g|| over all arrays (double accumulation).
inline double UpdateNorm(const std::vector<torch::Tensor>& weights,
                         const std::vector<torch::Tensor>& reference) {
  torch::NoGradGuard no_grad;
  double squared = 0;
  for (size_t k = 0; k < weights.size(); ++k) {
    squared += (weights[k].to(torch::kFloat64) - reference[k].to(torch::kFloat64))
                   .square()
                   .sum()
                   .item<double>();
  }
  return std::sqrt(squared);
}

// Clips in place; returns {norm before clipping, whether it scaled}.
inline std::pair<double, bool> ClipUpdate(std::vector<torch::Tensor>& weights,
                                          const std::vector<torch::Tensor>& reference,
                                          double clipping_norm) {
  const double norm = UpdateNorm(weights, reference);
  if (!(clipping_norm > 0) || !(norm > clipping_norm)) return {norm, false};
  torch::NoGradGuard no_grad;
  const double scale = clipping_norm / norm;  // min(1, C / norm) < 1 here
  for (size_t k = 0; k < weights.size(); ++k) {
    weights[k].copy_(reference[k] + (weights[k] - reference[k]) * scale);
  }
  return {norm, true};
}

}  // namespace petal::model::internal
