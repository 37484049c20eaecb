#pragma once
// Records as JSON: the spool file's lines and `aitw history --json`.
#include <nlohmann/json.hpp>

#include "aitw/history/history.hpp"

namespace aitw::history {

nlohmann::json to_json(const SessionEntry& e);
nlohmann::json to_json(const EventEntry& e);
nlohmann::json to_json(const WorkerRecord& w);
nlohmann::json to_json(const StatsRow& r);
// Throws nlohmann::json::exception on a document of another shape.
SessionEntry session_from_json(const nlohmann::json& j);
EventEntry event_from_json(const nlohmann::json& j);

}  // namespace aitw::history
