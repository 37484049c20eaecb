// Validators and flags shared by several commands. Each validator is built on the library function that
// reads the value, so that the CLI accepts exactly what the job understands.
#include <sstream>

#include "aitw/base/host_port.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "commands.hpp"

namespace aitw::tools {

const CLI::Validator kHostPort(
    [](std::string& s) {
      std::string error;
      return aitw::parse_host_port(s, &error) ? std::string() : "'" + s + "': " + error;
    },
    "HOST:PORT");

const CLI::Validator kImgsz(
    [](std::string& s) {
      pipeline::DetectorConfig scratch;
      std::string error;
      return jobs::apply_imgsz(s, scratch, &error) ? std::string() : error;
    },
    "N|HxW");

CLI::Validator dimensions(const std::string& spelling) {
  return CLI::Validator(
      [spelling](std::string& s) {
        std::string error;
        return jobs::parse_dimensions(s, spelling, &error) ? std::string() : error;
      },
      spelling);
}

namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

CLI::Validator bounded_below(double bound, bool inclusive) {
  const std::string op = inclusive ? ">=" : ">";
  return CLI::Validator(
      [=](std::string& s) {
        double v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return "'" + s + "' is not a number";
        return (inclusive ? v >= bound : v > bound) ? std::string()
                                                    : "'" + s + "' is not " + op + " " + number_text(bound);
      },
      op + number_text(bound));
}

}  // namespace

CLI::Validator at_least(double bound) {
  return bounded_below(bound, true);
}

CLI::Validator above(double bound) {
  return bounded_below(bound, false);
}

const char* const kModelHelp =
    "ONNX model: a path, or a name looked up in --model-dir, $AITW_MODEL_DIR,\n"
    "$XDG_DATA_HOME/aitw/models (~/.local/share/aitw/models), then the registry";

void add_precision_flag(CLI::App& cmd, kernel::ConvPrecision& precision, const char* note) {
  precision = *jobs::parse_precision("auto");
  cmd.add_option_function<std::string>(
         "--precision", [&precision](const std::string& s) { precision = *jobs::parse_precision(s); },
         std::string(
             "the convolutions' multiplies: fp32; bf16 (AVX512_BF16 CPUs; fp32 elsewhere); auto = bf16 "
             "where\nthe CPU has it, else fp32 (both shared models keep their coco128 accuracy in bf16). "
             "The load log\nand InitOk.providers say which runs") +
             note)
      ->default_str("auto")
      ->envname("AITW_PRECISION")
      ->check(CLI::Validator(
          [](std::string& s) {
            std::string error;
            return jobs::parse_precision(s, &error) ? std::string() : error;
          },
          "fp32|bf16|auto"));
}

void add_model_dir_flag(CLI::App& cmd, GlobalFlags& global) {
  cmd.add_option("--model-dir", global.model_dirs,
                 "look model names up in DIR first (repeatable); then in $AITW_MODEL_DIR,\n"
                 "$XDG_DATA_HOME/aitw/models and the registry")
      ->check(CLI::ExistingDirectory);
}

void add_registry_flag(CLI::App& cmd, GlobalFlags& global, const std::string& note) {
  cmd.add_option("--registry", global.registry_uri,
                 "model registry for name[@version] references: file:///path or "
                 "s3://bucket/prefix?endpoint=URL&region=R or mongodb://HOST:PORT/DB?blobs=URI\n"
                 "(default $AITW_REGISTRY, else file://$XDG_DATA_HOME/aitw/registry)" +
                     note);
}

}  // namespace aitw::tools
