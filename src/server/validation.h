// File: validation.h
//
// The server's defence against bad updates: a reply that fails these checks
// is counted as a failure (with the reason logged and kept in the history)
// and never reaches the aggregate.
#pragma once

#include "absl/status/status.h"
#include "common/messages.h"

namespace petal::server {

// A training result: status OK, num_examples > 0, and, when the global model
// has arrays, the same number of arrays with the same dtypes and shapes; no NaN
// or Inf anywhere. InvalidArgument naming the first problem.
absl::Status ValidateFitRes(const common::FitRes& res, const common::NDArrays& global);
// An evaluation result: status OK, finite loss, num_examples > 0.
absl::Status ValidateEvaluateRes(const common::EvaluateRes& res);
// get_parameters: status OK and finite arrays.
absl::Status ValidateGetParametersRes(const common::GetParametersRes& res);

}  // namespace petal::server
