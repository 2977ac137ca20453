// The driver registry and block_init bookkeeping.
#include "block/driver.h"

#include <algorithm>
#include <mutex>

namespace coblock {

namespace {

std::vector<void (*)()>& init_functions() {
    static std::vector<void (*)()> functions;
    return functions;
}

std::vector<const BlockDriver*>& registry() {
    static std::vector<const BlockDriver*> drivers;
    return drivers;
}

}  // namespace

int detail::record_block_init(void (*fn)()) {
    init_functions().push_back(fn);
    return 0;
}

void block_layer_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (auto fn : init_functions())
            fn();
        std::sort(registry().begin(), registry().end(),
                  [](const BlockDriver* a, const BlockDriver* b) { return a->name < b->name; });
    });
}

void register_block_driver(const BlockDriver* driver) {
    registry().push_back(driver);
}

const BlockDriver* find_block_driver(std::string_view name) {
    block_layer_init();
    for (const BlockDriver* d : registry())
        if (d->name == name) return d;
    return nullptr;
}

// "null-co://" and "file:/x" select protocols; a plain path with a colon
// later in it ("./a:b") does not, as in QEMU's path_has_protocol.
const BlockDriver* find_protocol_for_filename(std::string_view filename) {
    block_layer_init();
    size_t colon = filename.find(':');
    if (colon == std::string_view::npos) return nullptr;
    std::string_view prefix = filename.substr(0, colon);
    if (prefix.find('/') != std::string_view::npos) return nullptr;
    for (const BlockDriver* d : registry()) {
        if (d->kind == DriverKind::kFormat) continue;
        for (const std::string& p : d->protocol_prefixes)
            if (p == prefix) return d;
    }
    return nullptr;
}

std::vector<const BlockDriver*> block_drivers() {
    block_layer_init();
    return registry();
}

}  // namespace coblock
