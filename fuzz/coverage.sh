#!/usr/bin/env bash
# Source-level coverage of a fuzz target's corpus: runs every corpus input once (-runs=0
# -print_coverage=1) and lists libFuzzer's edge counts for the functions under test.
#   fuzz/coverage.sh TARGET [PATTERN...]   (default patterns per target below; PATTERN is a fixed string
#                                           matched against "function /path/file.cpp:line")
# Edges include the sanitizers' check branches, which a correct program never takes: 100 % is not the aim;
# an unreached function, or a low share in one the target should exercise, is.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${AITW_FUZZ_BUILD:-build-fuzz}
target=${1:?usage: fuzz/coverage.sh TARGET [PATTERN...]}
shift
patterns=("$@")
if [ ${#patterns[@]} -eq 0 ]; then
  case "$target" in
    fuzz_session) patterns=(net/src/framing.cpp net/src/session.cpp "pipeline::decode_frame" "pipeline::jpeg_dimensions"
                            "net::model_refusal") ;;
    fuzz_onnx) patterns=(model/src/onnx_model.cpp model/src/graph.cpp model/src/adapter.cpp model/src/passes/) ;;
    fuzz_registry) patterns=("s3::parse_list_objects_v2" "s3::parse_error" "::find_element" "::xml_unescape"
                             "Registry::manifest" "Registry::fetch" "Registry::remove" "Registry::versions"
                             "Registry::names" "registry::resolve" "registry::cached_model_path"
                             "::remember_manifest" "registry::parse_ref") ;;
    fuzz_recording) patterns=("RecordingReader::" "::get_u32" "::read_exactly") ;;
    fuzz_jpeg) patterns=("pipeline::decode_frame" "pipeline::jpeg_dimensions") ;;
    *) echo "coverage: no default patterns for $target" >&2; exit 2 ;;
  esac
fi
report=$(ASAN_OPTIONS=detect_leaks=0 "$build/fuzz/$target" -runs=0 -print_coverage=1 "$build/corpus/$target" 2>&1 |
         grep -E '^(UN)?COVERED_FUNC: ' || true)
selected=$(for p in "${patterns[@]}"; do grep -F -- "$p" <<<"$report" || true; done | sort -u)
[ -n "$selected" ] || { echo "coverage: no function of $target matches ${patterns[*]}" >&2; exit 1; }
awk -v root="$(pwd)/" '
  { split($5, e, "/"); line = $0
    sub(/^(UN)?COVERED_FUNC: hits: [0-9]+ edges: [0-9]+\/[0-9]+ /, "", line)
    file = line; sub(/.* /, "", file); if (index(file, root) == 1) file = substr(file, length(root) + 1)
    name = line; gsub(/\(anonymous namespace\)::/, "", name); gsub(/\[abi:cxx11\]/, "", name)
    sub(/\(.*/, "", name); sub(/^aitw::/, "", name)
    printf "  %-50s %5d / %-5d %s\n", substr(name, 1, 50), e[1], e[2], file
    covered += e[1]; total += e[2]; n++; if (e[1] > 0) hit++ }
  END { printf "  %d of %d functions reached, %d of %d edges (%.0f %%)\n", hit, n, covered, total,
               total ? 100 * covered / total : 0 }' <<<"$selected"
