#include "aitw/model/class_names.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "aitw/model/lookup.hpp"

namespace aitw::model {
namespace {

namespace fs = std::filesystem;

TEST(ClassNames, ParsesUltralyticsNamesDict) {
  EXPECT_EQ(parse_names_dict("{0: 'person', 1: \"traffic light\", 2: 'it\\'s'}"),
            (std::vector<std::string>{"person", "traffic light", "it's"}));
  EXPECT_TRUE(parse_names_dict("{0: 'a', 2: 'c'}").empty());  // ids must be contiguous
  EXPECT_TRUE(parse_names_dict("").empty());
}

TEST(ClassNames, NamesFileBesideTheModelThenInTheModelFolders) {
  const fs::path root = fs::temp_directory_path() / ("aitw_names_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "beside");
  fs::create_directories(root / "folder");
  std::ofstream(root / "folder" / "coco80.names") << "person\r\nbicycle \n\ncar\n";
  set_model_dirs({(root / "folder").string()});
  const std::string model = (root / "beside" / "det.onnx").string();
  EXPECT_EQ(find_names_file(model), (root / "folder" / "coco80.names").string());
  EXPECT_EQ(read_names_file(find_names_file(model)), (std::vector<std::string>{"person", "bicycle", "car"}));
  std::ofstream(root / "beside" / "coco80.names") << "a\n";
  EXPECT_EQ(find_names_file(model), (root / "beside" / "coco80.names").string());
  set_model_dirs({});
  fs::remove_all(root);
  EXPECT_TRUE(read_names_file((root / "beside" / "coco80.names").string()).empty());
}

}  // namespace
}  // namespace aitw::model
