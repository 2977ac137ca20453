// Logging: spdlog loggers named per module ("block", "qcow2", "file", ...),
// all writing to one stderr sink. The level comes from COBLOCK_LOG (error,
// warn, info, debug, trace; default warn), read once.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace coblock {

// The logger for `module`, created on first use. Cheap enough to call once
// per file and keep in a static.
std::shared_ptr<spdlog::logger> logger(std::string_view module);

// Parses a COBLOCK_LOG value; unknown names fall back to warn.
spdlog::level::level_enum log_level_from_name(std::string_view name);

}  // namespace coblock
