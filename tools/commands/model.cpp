// aitw model export: the graph aitw runs as standard ONNX, for other engines (jobs::run_model_export).
#include <iostream>
#include <memory>

#include "aitw/base/defaults.hpp"
#include "aitw/jobs/flag_values.hpp"
#include "aitw/jobs/model_export.hpp"
#include "commands.hpp"

namespace aitw::tools {
Command add_model(CLI::App& app, GlobalFlags& global) {
  auto job = std::make_shared<jobs::ModelExport>();
  job->model = kDefaultModel;
  auto* cmd = app.add_subcommand("model", "Model files: export the graph aitw runs for other engines");
  cmd->require_subcommand(1);
  auto* exp = cmd->add_subcommand(
      "export",
      "Write the model cut at its raw head outputs and re-targeted to --imgsz, with standard ONNX ops only\n"
      "(no aitw layers): what bench/peer/run.sh runs with ONNX Runtime");
  exp->add_option("--model", job->model, kModelHelp)->capture_default_str();
  add_model_dir_flag(*exp, global);
  add_registry_flag(*exp, global);
  exp->add_option_function<std::string>(
         "--imgsz",
         [job](const std::string& s) {
           const auto hw = jobs::parse_dimensions(s, "HxW");
           job->input = {hw->first, hw->second};
         },
         "network input HxW (multiples of the model's stride, e.g. 480x640)")
      ->required()
      ->check(dimensions("HxW"));
  exp->add_option("OUT", job->out, "the .onnx file to write")->required();
  return {cmd, [job] { return jobs::run_model_export(*job, std::cout); }};
}

}  // namespace aitw::tools
