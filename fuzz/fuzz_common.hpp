#pragma once
// Shared by the fuzz targets and the seed generator.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <google/protobuf/stubs/logging.h>
#include <sanitizer/common_interface_defs.h>

namespace aitw::fuzz {

// A broken invariant: print it and abort, so that libFuzzer saves the input as a crash. The message goes
// to stderr and, as a sanitizer SUMMARY line, to the report stream, which survives -close_fd_mask=2
// (scripts/fuzz.sh closes fuzz_jpeg's stderr: libjpeg writes a warning for every corrupt input).
#define AITW_FUZZ_CHECK(cond)                                                                 \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __sanitizer_report_error_summary("fuzz invariant failed: " #cond);                      \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// libprotobuf logs every string field with invalid UTF-8 it parses (then fails the parse, which the
// targets check): silenced, it would cost most of the run's time.
inline void quiet_protobuf() {
  google::protobuf::SetLogHandler(nullptr);
}

// fuzz_registry keeps these bytes as the one blob of its in-memory store, so that manifests naming their
// sha256 reach fetch()'s success path; make_seeds writes such manifests.
inline constexpr std::string_view kRegistryBlob = "aitw fuzz: the bytes of a registered model";

// fuzz_jpeg and fuzz_session decode JPEG frames with this pixel limit instead of kMaxFramePixels (the
// same code path and check; a smaller limit keeps garbage-filled decodes short and executions fast).
inline constexpr long long kFuzzMaxFramePixels = 1 << 18;

}  // namespace aitw::fuzz
