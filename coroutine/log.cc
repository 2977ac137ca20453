// Per-module spdlog loggers sharing one stderr sink.
#include "coroutine/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <mutex>
#include <string>

namespace coblock {

spdlog::level::level_enum log_level_from_name(std::string_view name) {
    if (name == "error") return spdlog::level::err;
    if (name == "warn" || name == "warning") return spdlog::level::warn;
    if (name == "info") return spdlog::level::info;
    if (name == "debug") return spdlog::level::debug;
    if (name == "trace") return spdlog::level::trace;
    if (name == "off") return spdlog::level::off;
    return spdlog::level::warn;
}

std::shared_ptr<spdlog::logger> logger(std::string_view module) {
    static std::mutex mutex;
    static const spdlog::level::level_enum level = [] {
        const char* env = std::getenv("COBLOCK_LOG");
        return log_level_from_name(env ? env : "warn");
    }();
    static const auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    std::lock_guard<std::mutex> lock(mutex);
    const std::string name(module);
    if (auto existing = spdlog::get(name)) return existing;
    auto created = std::make_shared<spdlog::logger>(name, sink);
    created->set_level(level);
    created->set_pattern("coblock %n %l: %v");
    spdlog::register_logger(created);
    return created;
}

}  // namespace coblock
