#include "client/client.h"

namespace petal::client {

// Out of line so the vtable has one home (the key function).
Client::~Client() = default;

}  // namespace petal::client
