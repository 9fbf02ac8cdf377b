// The matchers are header-only; this file gives the test-only library a
// translation unit so it can be linked like any other Petal library.
#include "common/testing/status_matchers.h"
