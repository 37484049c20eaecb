// aitw: the edge inference worker's command line. main() holds the program's own flags and dispatches; each
// subcommand is one file in commands/ that parses its flags and calls one library function.
#include <map>
#include <vector>

#include <CLI/CLI.hpp>

#include "aitw/base/log.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/registry/model_resolver.hpp"
#include "commands/commands.hpp"

int main(int argc, char** argv) {
  using namespace aitw::tools;
  CLI::App app{"aitw - edge inference worker for YOLO11/YOLOv8 object detection on CPU (OpenCV DNN)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("aitw 0.1.0"));
  GlobalFlags global;
  app.add_option("--log-level", global.log_level, "stderr log level: debug, info, warn, error, off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));

  // The order of --help.
  const std::vector<Command> commands{add_detect(app, global), add_bench(app, global),  add_record(app),
                                      add_serve(app, global),  add_replay(app, global), add_registry(app),
                                      add_model(app, global),  add_history(app),        add_fleet(app),
                                      add_health(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; every usage error (bad value, missing argument, unknown flag) exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  using aitw::LogLevel;
  static const std::map<std::string, LogLevel> levels{{"debug", LogLevel::Debug},
                                                      {"info", LogLevel::Info},
                                                      {"warn", LogLevel::Warn},
                                                      {"error", LogLevel::Error},
                                                      {"off", LogLevel::Off}};
  aitw::set_log_level(levels.at(global.log_level));
  // --model / Init.model may name registry models (AITW_REGISTRY or the default store).
  aitw::registry::install_model_resolver(global.registry_uri);
  aitw::model::set_model_dirs(global.model_dirs);
  for (const auto& command : commands)
    if (command.app->parsed()) return command.run();
  return 0;
}
