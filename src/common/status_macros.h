// File: status_macros.h
//
// Early-return helpers for absl::Status / absl::StatusOr (Debian's Abseil
// 20220623 ships no status_macros.h).
//
//   absl::Status Load(const std::string& path) {
//     PETAL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
//     PETAL_RETURN_IF_ERROR(Validate(bytes));
//     return absl::OkStatus();
//   }
#pragma once

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if not OK.
#define PETAL_RETURN_IF_ERROR(expr)                     \
  do {                                                  \
    ::absl::Status petal_status_ = (expr);              \
    if (!petal_status_.ok()) return petal_status_;      \
  } while (false)

#define PETAL_STATUS_CONCAT_INNER_(a, b) a##b
#define PETAL_STATUS_CONCAT_(a, b) PETAL_STATUS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from the
// enclosing function, otherwise moves the value into `lhs` (a declaration or an
// lvalue), e.g. PETAL_ASSIGN_OR_RETURN(auto x, Foo());
#define PETAL_ASSIGN_OR_RETURN(lhs, rexpr) \
  PETAL_ASSIGN_OR_RETURN_IMPL_(PETAL_STATUS_CONCAT_(petal_statusor_, __LINE__), lhs, rexpr)

#define PETAL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

namespace petal::common {

// Returns `status` with `context` prepended to its message ("context: message"),
// keeping the code. OK stays OK.
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace petal::common
