#include "aitw/model/class_names.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>

#include "aitw/model/lookup.hpp"

namespace aitw::model {
namespace fs = std::filesystem;

std::vector<std::string> parse_names_dict(const std::string& text) {
  std::map<int, std::string> names;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    while (i < n && !std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n) break;
    int id = 0;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) {
      id = std::min(id * 10 + (text[i++] - '0'), 1'000'000);  // no dataset has a million classes
    }
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n || text[i] != ':') continue;
    ++i;
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= n || (text[i] != '\'' && text[i] != '"')) continue;
    const char q = text[i++];
    std::string name;
    while (i < n && text[i] != q) {
      if (text[i] == '\\' && i + 1 < n) ++i;
      name.push_back(text[i++]);
    }
    ++i;
    names[id] = name;
  }
  std::vector<std::string> out;
  for (const auto& [id, name] : names) {
    if (id != static_cast<int>(out.size())) return {};  // ids must be 0..n-1
    out.push_back(name);
  }
  return out;
}

std::vector<std::string> read_names_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::string find_names_file(const std::string& model_path) {
  std::vector<fs::path> candidates{fs::path(model_path).parent_path() / "coco80.names"};
  for (const auto& d : model_search_dirs()) candidates.push_back(fs::path(d) / "coco80.names");
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return c.string();
  return "";
}

}  // namespace aitw::model
