#include "server/validation.h"

#include <cmath>

#include <fmt/format.h>

#include "common/status_macros.h"
#include "strategy/aggregate.h"

namespace petal::server {
namespace {

absl::Status CheckReplyStatus(const common::ReplyStatus& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format("the client answered {}: {}",
                                                   common::CodeName(status.code), status.message));
}

}  // namespace

absl::Status ValidateFitRes(const common::FitRes& res, const common::NDArrays& global) {
  PETAL_RETURN_IF_ERROR(CheckReplyStatus(res.status));
  if (res.num_examples <= 0) {
    return absl::InvalidArgumentError(
        fmt::format("num_examples must be > 0, got {}", res.num_examples));
  }
  if (!global.empty()) {
    PETAL_RETURN_IF_ERROR(common::Annotate(strategy::CheckSameLayout(global, res.parameters),
                                           "parameters do not match the global model"));
  }
  return strategy::CheckFinite(res.parameters);
}

absl::Status ValidateEvaluateRes(const common::EvaluateRes& res) {
  PETAL_RETURN_IF_ERROR(CheckReplyStatus(res.status));
  if (!std::isfinite(res.loss)) {
    return absl::InvalidArgumentError(fmt::format("loss is not finite ({})", res.loss));
  }
  if (res.num_examples <= 0) {
    return absl::InvalidArgumentError(
        fmt::format("num_examples must be > 0, got {}", res.num_examples));
  }
  return absl::OkStatus();
}

absl::Status ValidateGetParametersRes(const common::GetParametersRes& res) {
  PETAL_RETURN_IF_ERROR(CheckReplyStatus(res.status));
  return strategy::CheckFinite(res.parameters);
}

}  // namespace petal::server
