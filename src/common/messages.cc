#include "common/messages.h"

namespace petal::common {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kGetPropertiesNotImplemented:
      return "GET_PROPERTIES_NOT_IMPLEMENTED";
    case Code::kGetParametersNotImplemented:
      return "GET_PARAMETERS_NOT_IMPLEMENTED";
    case Code::kFitNotImplemented:
      return "FIT_NOT_IMPLEMENTED";
    case Code::kEvaluateNotImplemented:
      return "EVALUATE_NOT_IMPLEMENTED";
  }
  return "UNKNOWN";
}

}  // namespace petal::common
