// The interactive command loop: line editing, history and tab completion of
// command names with libedit, used only when stdin is a terminal (scripts
// and pipes keep qemu-io's plain fgets loop, see main.cc).
#pragma once

#include "coroutine/event_loop.h"

namespace coblock::io {

// Reads and runs commands with the "NAME> " prompt until quit or end of
// input (^D), running `loop` while waiting so AIO completions print as they
// come. Returns whether any command failed.
bool run_interactive_loop(EventLoop& loop);

}  // namespace coblock::io
