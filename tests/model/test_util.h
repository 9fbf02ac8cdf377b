// File: test_util.h
//
// Helpers shared by the model tests: temporary directories with small data
// files, and a small synthetic split.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/scratch_path.h"
#include "gtest/gtest.h"

namespace petal::model::testing {

// A fresh directory under the test temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = ::petal::testing::ScratchPath("model_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Writes `contents` to `name` inside the directory; returns the full path.
  std::string Write(const std::string& name, const std::string& contents) const {
    const std::string p = file(name);
    std::ofstream out(p, std::ios::binary);
    out << contents;
    return p;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace petal::model::testing
