#include "model_host.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>

#include <sys/stat.h>

#include "aitw/base/defaults.hpp"
#include "aitw/base/log.hpp"
#include "aitw/model/lookup.hpp"
#include "aitw/net/server.hpp"
#include "aitw/pipeline/detector.hpp"

namespace aitw::net {

std::string model_label(const std::string& model, const std::string& path) {
  return model::is_model_path(model) ? std::filesystem::path(path).filename().string() : model;
}

using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

// The file a checked path names: absolute, symlinks and `..` resolved. Throws when it does not exist.
std::string canonical_model_path(const std::string& model) {
  std::error_code ec;
  const auto p = std::filesystem::canonical(model, ec);
  if (ec || !std::filesystem::is_regular_file(p, ec))
    throw model::ModelError("model '" + model + "' not found (no such file in the model directories)");
  return p.string();
}

// What the file at `path` is right now (device, inode, size, modification time): part of a loaded model's
// key, so that an Init naming a file replaced or rewritten on disk loads it again instead of reusing the copy
// loaded before (which keeps serving the sessions on it). Empty when it cannot be stat'ed.
std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  std::ostringstream id;
  id << st.st_dev << ":" << st.st_ino << ":" << st.st_size << ":" << st.st_mtim.tv_sec << "."
     << st.st_mtim.tv_nsec;
  return id.str();
}

// One pipeline per model file as it is on disk: sessions' thresholds and class filters travel with their
// frames (decode + NMS only), so sessions that differ only in those share the network and take turns.
std::string model_key(const std::string& path, const std::string& identity) {
  return path + "|" + identity + "|";
}

}  // namespace

std::optional<std::string> model_refusal(const std::string& model,
                                         const std::vector<std::string>& model_dirs) {
  namespace fs = std::filesystem;
  // A name is only looked up inside the model folders: it cannot point anywhere else.
  if (!model::is_model_path(model)) return std::nullopt;
  if (model_dirs.empty())
    return "Init.model '" + model +
           "' is a path; this worker accepts model names only (start it with --model-dir DIR "
           "to allow paths under DIR)";
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(model, ec), ec);  // resolves symlinks and ..
  if (!ec) {
    for (const auto& d : model_dirs) {
      const fs::path dir = fs::weakly_canonical(fs::absolute(d, ec), ec);
      if (ec) continue;
      const auto rel = target.lexically_relative(dir);
      if (!rel.empty() && *rel.begin() != ".." && rel != ".") return std::nullopt;
    }
  }
  return "Init.model '" + model +
         "' is outside the allowed model directories (--model-dir); `..` and symlinks "
         "out of them are refused";
}

bool default_model_on_disk() {
  try {
    model::resolve_model_path(std::string(kDefaultModel), /*use_resolver=*/false);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

ModelHost::ModelHost(asio::io_context& io, ModelHostConfig config, StatsBoard& stats,
                     std::function<void()> on_change, ResultHandler on_result)
    : io_(io),
      cfg_(std::move(config)),
      stats_(stats),
      on_change_(std::move(on_change)),
      on_result_(std::move(on_result)) {}

ModelHost::~ModelHost() = default;

awaitable<ModelHost::Acquired> ModelHost::acquire(std::string model, int warm_width, int warm_height,
                                                  std::function<bool()> abandoned) {
  Acquired out;
  const auto fail = [&out](const char* cause, std::string message) {
    out.cause = cause;
    out.error = std::move(message);
    return out;
  };
  if (const auto refusal = model_refusal(model, cfg_.model_dirs))
    co_return fail("model_not_allowed", *refusal);
  // A path is loaded exactly as checked (canonical, inside a model directory): no search-folder fallback.
  std::string path, identity, resolve_error;
  co_await asio::co_spawn(
      loader_,
      [&]() -> awaitable<void> {
        try {
          path = model::is_model_path(model) ? canonical_model_path(model) : model::resolve_model_path(model);
          identity = file_identity(path);
        } catch (const std::exception& e) {
          resolve_error = e.what();
        }
        co_return;
      },
      use_awaitable);
  out.abandoned = abandoned();
  if (out.abandoned) co_return out;
  if (!resolve_error.empty()) co_return fail("model_not_found", resolve_error);

  const std::string key = model_key(path, identity);
  for (auto it = loads_in_progress_.find(key); !models_.count(key) && it != loads_in_progress_.end();
       it = loads_in_progress_.find(key)) {
    const auto load_done = it->second;
    asio::error_code ec;
    co_await load_done->async_wait(asio::redirect_error(use_awaitable, ec));
    out.abandoned = abandoned();
    if (out.abandoned) co_return out;
  }
  if (!models_.count(key)) {
    // The key holds the file's identity: another copy of this path loaded means the file changed.
    const bool changed =
        std::any_of(models_.begin(), models_.end(), [&](const auto& m) { return m.second.path == path; });
    if (changed) aitw::log_info("model file '" + path + "' changed on disk: loading it again");
    ++loading_;
    stats_.update([](ServerStats& s) { ++s.model_loads_total; });
    on_change_();
    const auto load_done = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    loads_in_progress_[key] = load_done;
    const auto t0 = Clock::now();
    std::string error;
    auto p = co_await load(path, warm_width, warm_height, error);
    --loading_;
    loads_in_progress_.erase(key);
    load_done->cancel();  // wakes the Inits waiting for this key (if it failed, each tries its own)
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!p) {
      on_change_();
      report("load_failed", model, seconds * 1000, error);
      co_return fail("model_load_failed", error);
    }
    report(changed ? "reload" : "load", model, seconds * 1000);
    stats_.update([seconds](ServerStats& s) { s.last_model_load_seconds = seconds; });
    if (!models_.count(key)) {  // else another Init loaded it meanwhile
      auto& h = models_[key];
      h.pipeline = std::move(p);
      h.path = path;
      h.generation = next_generation_++;
      retire_superseded(path);  // copies of the old file that no session uses any more
    }
  }
  out.abandoned = abandoned();
  if (out.abandoned) co_return out;
  out.key = key;
  out.path = path;
  co_return out;
}

// On the loader thread; the co_spawn'd coroutine runs there and this one resumes on the io thread.
awaitable<std::shared_ptr<pipeline::Pipeline>> ModelHost::load(const std::string& path, int warm_width,
                                                               int warm_height, std::string& error) {
  pipeline::PipelineConfig pc;
  pc.detector.model_path = path;
  pc.nets = cfg_.nets;
  pc.threads_per_net = cfg_.threads;
  pc.detector.adapt.precision = cfg_.precision;
  pc.warm_width = warm_width;
  pc.warm_height = warm_height;
  std::shared_ptr<pipeline::Pipeline> p;
  co_await asio::co_spawn(
      loader_,
      [&]() -> awaitable<void> {
        try {
          p = std::make_shared<pipeline::Pipeline>(pc, [this](pipeline::FrameResult&& r) {
            asio::post(io_, [this, r = std::move(r)]() mutable { on_result_(std::move(r)); });
          });
        } catch (const std::exception& e) {
          error = e.what();
        }
        co_return;
      },
      use_awaitable);
  co_return p;
}

pipeline::Pipeline& ModelHost::pipeline(const std::string& key) {
  return *models_.at(key).pipeline;
}

void ModelHost::use(const std::string& key) {
  if (auto it = models_.find(key); it != models_.end()) ++it->second.sessions;
}

void ModelHost::release(const std::string& key) {
  if (key.empty()) return;
  auto it = models_.find(key);
  if (it == models_.end()) return;
  --it->second.sessions;
  retire_superseded(it->second.path);
}

void ModelHost::withdraw(const std::string& key, std::uint64_t tag) {
  // Its frame waiting for a turn would take one for nobody.
  if (auto it = models_.find(key); it != models_.end() && it->second.pipeline)
    it->second.pipeline->cancel(tag);
}

// `path` by value: the entry that holds the caller's string may be the one erased here.
void ModelHost::retire_superseded(std::string path) {
  std::uint64_t newest = 0;
  for (const auto& [k, h] : models_)
    if (h.path == path) newest = std::max(newest, h.generation);
  for (auto it = models_.begin(); it != models_.end();) {
    if (it->second.path == path && it->second.generation < newest && it->second.sessions <= 0) {
      aitw::log_info("unloading the superseded copy of '" + path + "' (the file changed on disk)");
      // Destroyed on the loader thread: it waits for the frames inside, which the io thread delivers.
      asio::post(loader_, [p = std::move(it->second.pipeline)]() mutable { p.reset(); });
      report("unload", path, 0);
      it = models_.erase(it);
    } else {
      ++it;
    }
  }
  on_change_();
}

awaitable<void> ModelHost::unload_when_idle(std::function<bool()> in_use) {
  asio::steady_timer t(io_);
  for (;;) {
    t.expires_after(std::min(std::chrono::milliseconds(500), cfg_.idle_timeout));
    co_await t.async_wait(use_awaitable);
    if (in_use() || loading_ > 0 || models_.empty()) continue;
    if (Clock::now() - last_activity_ < cfg_.idle_timeout) continue;
    aitw::log_info("no session for " + std::to_string(cfg_.idle_timeout.count()) + " ms: unloading " +
                   std::to_string(models_.size()) + " model(s)");
    unload_all();
    stats_.update([](ServerStats& s) { ++s.transitions_to_idle_total; });
    on_change_();
  }
}

void ModelHost::unload_all() {
  for (const auto& [key, h] : models_) report("unload", h.path, 0);
  models_.clear();
}

void ModelHost::report(std::string kind, std::string model, double ms, std::string error) const {
  if (!cfg_.on_event) return;
  cfg_.on_event(ModelEvent{std::move(kind), std::move(model), ms, std::move(error), unix_ms()});
}

}  // namespace aitw::net
