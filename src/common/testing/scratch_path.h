// File: testing/scratch_path.h
//
// A path under gtest's temp dir that no other test process can be using:
// ctest runs every test case as its own process, several at once, and other
// builds of the project (build/ and build-asan/, another checkout's CI) share
// the same /tmp. The name carries the test suite, the test and the pid.
//
//   const std::filesystem::path dir = ScratchPath("federation_config");
//   std::filesystem::create_directories(dir);
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace petal::testing {

inline std::filesystem::path ScratchPath(std::string_view stem) {
  std::string name = "petal_" + std::string(stem);
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name += "_" + std::string(info->test_suite_name()) + "." + info->name();
  }
  name += "_" + std::to_string(::getpid());
  for (char& c : name) {
    if (c == '/') c = '_';  // parameterized tests are named Suite/Test/0
  }
  return std::filesystem::path(::testing::TempDir()) / name;
}

}  // namespace petal::testing
