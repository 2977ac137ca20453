// --object: user-creatable objects as qemu-io 7.2 creates them from the
// command line (qom/object_interfaces.c user_creatable_process_cmdline).
// Only `secret` exists so far; secrets are stored for drivers that will
// need them (encryption), and parse errors match QEMU's.
#pragma once

#include <optional>
#include <string>

namespace coblock::io {

// 0: created; 1: error printed (exit 1); 2: help printed (exit 0).
int add_object(const char* text);

// The data of secret `id` (after file reading), or nullopt.
std::optional<std::string> find_secret(const std::string& id);

}  // namespace coblock::io
