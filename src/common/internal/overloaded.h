// Overloaded{lambdas...}: the usual std::visit helper.
#pragma once

namespace petal::common::internal {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace petal::common::internal
