// aitw registry push|list|show|pull|rm: one action on a model registry (jobs::run_registry_command).
#include <iostream>
#include <memory>

#include "aitw/jobs/flag_values.hpp"
#include "aitw/jobs/registry.hpp"
#include "commands.hpp"

namespace aitw::tools {
namespace {

// --label k=v (jobs::parse_label).
const CLI::Validator kLabel(
    [](std::string& s) {
      std::string error;
      return jobs::parse_label(s, &error) ? std::string() : error;
    },
    "K=V");

}  // namespace

Command add_registry(CLI::App& app) {
  auto reg = std::make_shared<jobs::RegistryCommand>();
  auto* registry = app.add_subcommand(
      "registry",
      "Versioned model bundles on a store: file:///path (the default: $AITW_REGISTRY, else\n"
      "$XDG_DATA_HOME/aitw/registry) or s3://bucket/prefix?endpoint=http://host:port&region=R (MinIO, AWS "
      "S3;\n"
      "credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), or\n"
      "mongodb://HOST:PORT/DB?blobs=URI (manifests in MongoDB, bytes in the file:// or s3:// URI).\n"
      "--model / Init.model accept name or name@version from it (detect/serve/replay --registry URI).");
  registry->require_subcommand(1);
  registry->add_option(
      "--registry", reg->uri,
      "store URI: file:///path, s3://bucket/prefix?endpoint=... or mongodb://HOST:PORT/DB?blobs=URI");
  auto* push = registry->add_subcommand("push", "validate a model with the adapter and publish it");
  push->add_option("FILE", reg->file, "ONNX model")->required()->check(CLI::ExistingFile);
  push->add_option("--name", reg->name, "model name")->required();
  // 0 or less leaves the default (latest + 1), as it always has.
  push->add_option_function<long long>(
      "--version",
      [reg](long long v) {
        if (v > 0) reg->version = v;
      },
      "version (default: latest + 1); immutable once published");
  push->add_option_function<std::vector<std::string>>(
          "--label",
          [reg](const std::vector<std::string>& labels) {
            for (const auto& l : labels) {
              const auto [key, value] = *jobs::parse_label(l);  // checked by kLabel
              reg->labels[key] = value;                         // the last of a repeated key wins
            }
          },
          "free-form label k=v (repeatable)")
      ->check(kLabel);
  auto* list = registry->add_subcommand("list", "list models and versions");
  list->add_option("NAME", reg->name, "only this model");
  list->add_flag("--json", reg->json, "JSON instead of a table");
  auto* show = registry->add_subcommand("show", "print a manifest");
  show->add_option("REF", reg->ref, "name or name@version")->required();
  auto* pull = registry->add_subcommand("pull", "fetch a model (verified) into the cache or --out");
  pull->add_option("REF", reg->ref, "name or name@version")->required();
  pull->add_option("--out", reg->out, "write the model here instead of the cache");
  auto* rm = registry->add_subcommand("rm", "remove one version");
  rm->add_option("REF", reg->ref, "name@version")->required();
  const std::vector<CLI::App*> actions{push, list, show, pull, rm};
  // `aitw registry list --registry URI` as well as `aitw registry --registry URI list`.
  for (auto* sub : actions) sub->fallthrough();
  return {registry, [reg, actions] {
            for (auto* sub : actions)
              if (sub->parsed()) reg->action = sub->get_name();
            return jobs::run_registry_command(*reg, std::cout, std::cerr);
          }};
}

}  // namespace aitw::tools
