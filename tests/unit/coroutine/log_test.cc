// Logging: per-module loggers and COBLOCK_LOG level names.
#include "coroutine/log.h"

#include <gtest/gtest.h>

namespace coblock {
namespace {

TEST(Log, LevelNames) {
    EXPECT_EQ(log_level_from_name("error"), spdlog::level::err);
    EXPECT_EQ(log_level_from_name("warn"), spdlog::level::warn);
    EXPECT_EQ(log_level_from_name("info"), spdlog::level::info);
    EXPECT_EQ(log_level_from_name("debug"), spdlog::level::debug);
    EXPECT_EQ(log_level_from_name("trace"), spdlog::level::trace);
    EXPECT_EQ(log_level_from_name("bogus"), spdlog::level::warn);
}

TEST(Log, OneLoggerPerModule) {
    auto a = logger("block");
    auto b = logger("block");
    auto c = logger("qcow2");
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_EQ(a->name(), "block");
}

}  // namespace
}  // namespace coblock
