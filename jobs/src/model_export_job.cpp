#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>

#include <unistd.h>

#include "aitw/base/log.hpp"
#include "aitw/jobs/model_export.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/model/onnx_model.hpp"

namespace aitw::jobs {

int run_model_export(const ModelExport& job, std::ostream& out) {
  namespace fs = std::filesystem;
  try {
    const auto model = model::OnnxModel::load(model::resolve_model_path(job.model));
    model::AdaptOptions standard;  // only the cut and the re-targeting: standard ONNX ops throughout
    standard.custom_layers = false;
    standard.fix_attention = false;
    const auto graph = model.adapt(job.input, standard);
    const fs::path dest(job.out);
    const fs::path tmp = dest.string() + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(graph.onnx_bytes.data(), static_cast<std::streamsize>(graph.onnx_bytes.size()));
      f.close();
      if (!f) {
        std::error_code ec;
        fs::remove(tmp, ec);
        log_error("model export: cannot write '" + job.out + "'");
        return 2;
      }
    }
    std::error_code ec;
    fs::rename(tmp, dest, ec);
    if (ec) {
      fs::remove(tmp, ec);
      log_error("model export: cannot write '" + job.out + "': " + ec.message());
      return 2;
    }
    out << "exported " << model.label() << " at " << job.input.height << "x" << job.input.width << " to "
        << job.out << " (" << graph.onnx_bytes.size() << " bytes, outputs";
    for (const auto& name : graph.output_names) out << " " << name;
    out << "): " << graph.summary() << "\n";
    return 0;
  } catch (const std::exception& e) {
    log_error(std::string("model export: ") + e.what());
    return 2;
  }
}

}  // namespace aitw::jobs
