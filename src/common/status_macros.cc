#include "common/status_macros.h"

#include <fmt/format.h>

namespace petal::common {

absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      fmt::format("{}: {}", context, std::string(status.message())));
}

}  // namespace petal::common
