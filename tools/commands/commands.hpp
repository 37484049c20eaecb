#pragma once
// The `aitw` subcommands, one file each in tools/commands/ (private to tools/). Each registers its flags,
// values checked by CLI11 validators (a bad value is a usage error naming the flag: exit 2), and when given
// runs one library function of aitw_jobs or aitw_bench_cases that does the job.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "aitw/kernel/conv.hpp"

namespace aitw::tools {

// Flags of the whole program, parsed by main.cpp. --registry is given after the command that uses it.
struct GlobalFlags {
  std::string log_level = "info";
  std::string registry_uri;  // --registry of detect, serve and replay: where name[@version] is looked up
  std::vector<std::string>
      model_dirs;  // --model-dir of detect, bench and replay: names are looked up there first
};

// A registered subcommand, and what runs when it was the one given (returns the exit status). `run` owns
// the values the subcommand's options write into: keep the Command until it has run.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_detect(CLI::App& app, GlobalFlags& global);
Command add_bench(CLI::App& app, GlobalFlags& global);
Command add_record(CLI::App& app);
Command add_serve(CLI::App& app, GlobalFlags& global);
Command add_replay(CLI::App& app, GlobalFlags& global);
Command add_registry(CLI::App& app);
Command add_model(CLI::App& app, GlobalFlags& global);
Command add_history(CLI::App& app);  // and `history stats`
Command add_fleet(CLI::App& app);
Command add_health(CLI::App& app);

// Shared by several commands (flags.cpp).

// HOST:PORT (aitw/base/host_port.hpp): a bad value is a usage error naming the flag and the value.
extern const CLI::Validator kHostPort;
// --imgsz N or HxW, multiples of 32 (jobs::apply_imgsz).
extern const CLI::Validator kImgsz;
// Two positive sizes "AxB" (jobs::parse_dimensions), spelled e.g. "WxH" in the help and the error.
CLI::Validator dimensions(const std::string& spelling);
// A number of at least / more than `bound`, shown as "FLOAT:>=0" in the help; the error names the value.
// (CLI11 2.1's PositiveNumber and NonNegativeNumber print DBL_MAX in full in theirs.)
CLI::Validator at_least(double bound);
CLI::Validator above(double bound);
// --registry URI on `cmd`, into global.registry_uri; `note` is appended to the common help.
void add_registry_flag(CLI::App& cmd, GlobalFlags& global, const std::string& note = "");
// --model-dir DIR (repeatable) on `cmd`, into global.model_dirs (model::set_model_dirs, in main.cpp).
void add_model_dir_flag(CLI::App& cmd, GlobalFlags& global);
// --precision fp32|bf16|auto (env AITW_PRECISION), resolved for this CPU into `precision`.
// `note`: appended to the help text.
void add_precision_flag(CLI::App& cmd, kernel::ConvPrecision& precision, const char* note = "");
// The help of --history in `aitw history` and `aitw fleet` (history.cpp).
extern const char* const kHistoryHelp;
// The help of --model: where a name is looked up.
extern const char* const kModelHelp;

}  // namespace aitw::tools
