#pragma once
// The models a worker holds, apart from the transport (as Triton's model lifecycle is apart from its
// servers): what an Init.model names (a registry name or a path inside the model directories), one pipeline
// per model file as it is on disk, loaded once however many sessions ask for it at the same time and shared
// by them; a file changed on disk is loaded again and the superseded copy retired once its last session has
// left; everything is unloaded after idle_timeout without a session.
//
// Runs on the io thread. Resolution (which may ask the registry: network, retries, a download) and loads
// (a few hundred milliseconds) run on the loader thread, so that the sessions on the io thread keep flowing.
// Every use of the model resolution (model::resolve_model_path, ModelError, is_model_path) in net is here.
#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aitw/kernel/conv.hpp"
#include "aitw/net/records.hpp"
#include "aitw/pipeline/pipeline.hpp"
#include "stats_board.hpp"

namespace aitw::net {

struct ModelHostConfig {
  std::vector<std::string> model_dirs;  // ServerConfig::model_dirs: where Init.model paths may point
  int nets = 1, threads = 2;            // per loaded model (see the pipeline)
  std::chrono::milliseconds idle_timeout{60000};
  std::function<void(const ModelEvent&)> on_event;  // ServerConfig::on_model_event (may be empty)
  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32;  // ServerConfig::precision
};

// Whether the default model is in a local model folder. The registry is not asked: a readiness probe must
// not wait on (or download from) a remote store.
bool default_model_on_disk();
// The label of a model in metrics: a registry reference as given (name, name@version), a path's file name.
std::string model_label(const std::string& model, const std::string& path);

class ModelHost {
 public:
  using ResultHandler = std::function<void(pipeline::FrameResult&&)>;

  // `on_result` gets every pipeline result, on the io thread. `on_change` is called after what loading() or
  // loaded() return has changed (the server's worker state).
  ModelHost(asio::io_context& io, ModelHostConfig config, StatsBoard& stats, std::function<void()> on_change,
            ResultHandler on_result);
  ~ModelHost();
  ModelHost(const ModelHost&) = delete;
  ModelHost& operator=(const ModelHost&) = delete;

  struct Acquired {
    std::string key;           // the loaded model, for pipeline()/use()/release(); empty on failure
    std::string path;          // its file
    std::string cause, error;  // on failure: the metrics cause (model_not_allowed, ...) and the message
    bool abandoned = false;    // `abandoned()` became true while waiting: nothing to answer
  };
  // The model `model` names, loaded: the copy already loaded from the file as it is on disk, the one another
  // Init is loading (waited for), or a new load built for frames of warm_width x warm_height (0 = on the
  // first frame). Until the caller use()s it, the model may be retired or unloaded by what happens next.
  asio::awaitable<Acquired> acquire(std::string model, int warm_width, int warm_height,
                                    std::function<bool()> abandoned);

  // The pipeline of a loaded model; throws std::out_of_range for another key.
  pipeline::Pipeline& pipeline(const std::string& key);
  // A session starts / stops using the model under `key` (empty: none). A copy of a file that has since been
  // loaded again is unloaded once its last session has left; the current one stays for idle unload.
  void use(const std::string& key);
  void release(const std::string& key);
  // The frame of `tag` waiting for its turn in `key`'s pipeline is withdrawn (its sender went away).
  void withdraw(const std::string& key, std::uint64_t tag);

  // A session ended: the idle timeout counts from now.
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }
  // Unloads every model after idle_timeout while `in_use()` is false and nothing loads. Runs until the io
  // context stops.
  asio::awaitable<void> unload_when_idle(std::function<bool()> in_use);
  // Unloads every model now (the server stopping; on the io thread, which delivers their last results).
  void unload_all();
  // Waits for the loader thread (after the io thread has stopped).
  void join() { loader_.join(); }

  int loading() const { return loading_; }
  std::size_t loaded() const { return models_.size(); }

 private:
  struct Hosted {
    std::shared_ptr<pipeline::Pipeline> pipeline;
    int sessions = 0;
    std::string path;              // the model file
    std::uint64_t generation = 0;  // load order: a higher one holds a newer copy of `path`
  };
  asio::awaitable<std::shared_ptr<pipeline::Pipeline>> load(const std::string& path, int warm_width,
                                                            int warm_height, std::string& error);
  void retire_superseded(std::string path);
  void report(std::string kind, std::string model, double ms, std::string error = "") const;

  asio::io_context& io_;
  ModelHostConfig cfg_;
  StatsBoard& stats_;
  std::function<void()> on_change_;
  ResultHandler on_result_;
  asio::thread_pool loader_{1};
  std::map<std::string, Hosted> models_;
  std::uint64_t next_generation_ = 1;
  int loading_ = 0;
  // Loads under way, by model key: Inits that need the same key wait for that load (the timer never expires;
  // it is cancelled when the load ends) instead of loading a second copy.
  std::map<std::string, std::shared_ptr<asio::steady_timer>> loads_in_progress_;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
};

}  // namespace aitw::net
