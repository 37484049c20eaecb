#pragma once
// The two S3 answers the store reads: ListObjectsV2 pages and <Error> bodies. A small scanner rather than
// an XML library: S3 answers are flat, and every malformed body must become a RegistryError (the store's
// fault), never a crash (fuzz/fuzz_registry.cpp feeds it arbitrary bytes).
#include <string>
#include <string_view>
#include <vector>

namespace aitw::registry::s3 {

// ListObjectsV2 result: keys (XML-unescaped), and the token of the next page when truncated.
struct ListPage {
  std::vector<std::string> keys;
  bool truncated = false;
  std::string next_token;
};
// Throws RegistryError on XML that is not a ListBucketResult.
ListPage parse_list_objects_v2(std::string_view xml);

// <Error><Code>..</Code><Message>..</Message></Error>; empty fields when absent.
struct ErrorBody {
  std::string code;
  std::string message;
};
// Never throws: a garbled body gives empty fields.
ErrorBody parse_error(std::string_view xml);

}  // namespace aitw::registry::s3
