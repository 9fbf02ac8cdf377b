#include "common/file_util.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::petal::testing::ScratchPath("file_util");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(FileUtilTest, WriteThenReadRoundTripsBinary) {
  const std::string data("a\0b\xff", 4);
  PETAL_ASSERT_OK(WriteFileAtomically(Path("x.bin"), data));
  EXPECT_THAT(ReadFileToString(Path("x.bin")), IsOkAndHolds(data));
  struct stat st {};
  ASSERT_EQ(::stat(Path("x.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(FileUtilTest, ReplacesExistingFileAndLeavesNoTemporaries) {
  PETAL_ASSERT_OK(WriteFileAtomically(Path("x"), "old"));
  PETAL_ASSERT_OK(WriteFileAtomically(Path("x"), std::string(100000, 'n')));
  EXPECT_THAT(ReadFileToString(Path("x")), IsOkAndHolds(std::string(100000, 'n')));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "x");
  }
  EXPECT_EQ(files, 1);
}

TEST_F(FileUtilTest, ErrorsNameThePath) {
  EXPECT_THAT(ReadFileToString(Path("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  EXPECT_THAT(ReadFileToString(dir_.string()), StatusIs(absl::StatusCode::kInvalidArgument,
                                                        HasSubstr("is a directory")));
  EXPECT_THAT(WriteFileAtomically(Path("no/such/dir/x"), "x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no/such/dir/x")));
}

TEST_F(FileUtilTest, CreateDirectoriesIsIdempotentAndRejectsFiles) {
  PETAL_ASSERT_OK(CreateDirectories(Path("a/b/c")));
  PETAL_ASSERT_OK(CreateDirectories(Path("a/b/c")));
  EXPECT_TRUE(std::filesystem::is_directory(Path("a/b/c")));
  PETAL_ASSERT_OK(WriteFileAtomically(Path("f"), "x"));
  EXPECT_FALSE(CreateDirectories(Path("f")).ok());
}

}  // namespace
}  // namespace petal::common
