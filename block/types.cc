// Names and parsers for the block layer's vocabulary.
#include "block/types.h"

namespace coblock {

std::string permission_names(uint32_t perms) {
    static const struct {
        uint32_t bit;
        const char* name;
    } kNames[] = {{kPermConsistentRead, "consistent read"},
                  {kPermWrite, "write"},
                  {kPermWriteUnchanged, "write unchanged"},
                  {kPermResize, "resize"}};
    std::string out;
    for (const auto& n : kNames) {
        if (!(perms & n.bit)) continue;
        if (!out.empty()) out += ", ";
        out += n.name;
    }
    return out;
}

// QEMU's bdrv_parse_cache_mode: direct I/O, no-flush, and whether the
// device flushes after every write.
bool parse_cache_mode(const std::string& name, OpenFlags& flags) {
    if (name == "off" || name == "none") {
        flags.cache_direct = true;
        flags.cache_no_flush = false;
        flags.writethrough = false;
    } else if (name == "directsync") {
        flags.cache_direct = true;
        flags.cache_no_flush = false;
        flags.writethrough = true;
    } else if (name == "writeback") {
        flags.cache_direct = false;
        flags.cache_no_flush = false;
        flags.writethrough = false;
    } else if (name == "unsafe") {
        flags.cache_direct = false;
        flags.cache_no_flush = true;
        flags.writethrough = false;
    } else if (name == "writethrough") {
        flags.cache_direct = false;
        flags.cache_no_flush = false;
        flags.writethrough = true;
    } else {
        return false;
    }
    return true;
}

bool parse_aio_mode(const std::string& name, AioMode& mode) {
    if (name == "threads") {
        mode = AioMode::kThreads;
    } else if (name == "native") {
        mode = AioMode::kNative;
    } else if (name == "io_uring") {
        mode = AioMode::kIoUring;
    } else {
        return false;
    }
    return true;
}

bool parse_prealloc(const std::string& name, Prealloc& mode) {
    if (name == "off") {
        mode = Prealloc::kOff;
    } else if (name == "metadata") {
        mode = Prealloc::kMetadata;
    } else if (name == "falloc") {
        mode = Prealloc::kFalloc;
    } else if (name == "full") {
        mode = Prealloc::kFull;
    } else {
        return false;
    }
    return true;
}

const char* prealloc_name(Prealloc mode) {
    switch (mode) {
        case Prealloc::kOff:
            return "off";
        case Prealloc::kMetadata:
            return "metadata";
        case Prealloc::kFalloc:
            return "falloc";
        case Prealloc::kFull:
            return "full";
    }
    return "off";
}

}  // namespace coblock
