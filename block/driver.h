// BlockDriver: the constant descriptor of a driver (QEMU's BlockDriver without
// the function table, which lives in the BlockNode subclass), the registry of
// drivers, and block_init(), which records a registration function run once
// by block_layer_init().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "block/node.h"
#include "formats/bytes.h"
#include "formats/result.h"
#include "qapi/options_tree.h"
#include "qapi/schema.h"

namespace coblock {

class OpenContext;
class CreateContext;

enum class DriverKind { kFormat, kProtocol, kFilter };

struct BlockDriver {
    std::string name;  // "qcow2", "file", "null-co", "raw"
    DriverKind kind = DriverKind::kFormat;
    // Protocols: filename prefixes that select this driver ("null-co" matches
    // "null-co://..."; "file" matches "file:...").
    std::vector<std::string> protocol_prefixes;
    // Formats: a score 0..100 for the first bytes of an image (up to 2 KiB);
    // 0 = not this format. raw scores 1 so it is the fallback.
    int (*probe)(ByteSpan head, std::string_view filename) = nullptr;
    // Opens a node. `ctx` gives the options (the driver removes the keys it
    // consumes), the flags and helpers to open children. Runs in a coroutine.
    Result<std::unique_ptr<BlockNode>> (*co_open)(OpenContext& ctx) = nullptr;
    // Creates an image (qemu-img create). Null: the format cannot create.
    Status (*co_create)(CreateContext& ctx) = nullptr;
    // The schema of create options (-o help), null if none.
    const qapi::OptionSchema* create_options = nullptr;
    // Formats with backing files take -b/-F at create and backing.* at open.
    bool supports_backing = false;
    // Formats whose open needs no file child (none so far; protocols never do).
    bool is_format() const { return kind == DriverKind::kFormat; }
};

// Registers a driver; called by registration functions (block_init).
void register_block_driver(const BlockDriver* driver);
// Runs every recorded registration function once. Safe to call repeatedly.
void block_layer_init();
// Lookups (after block_layer_init()).
const BlockDriver* find_block_driver(std::string_view name);
const BlockDriver* find_protocol_for_filename(std::string_view filename);
std::vector<const BlockDriver*> block_drivers();

namespace detail {
// Records `fn` to run at block_layer_init(); returns a dummy for the static.
int record_block_init(void (*fn)());
}  // namespace detail

}  // namespace coblock

// block_init(fn): at static-construction time records `fn` (which calls
// register_block_driver) to run once at block_layer_init(), as QEMU's
// block_init()/module_call_init(MODULE_INIT_BLOCK) do. Driver objects are
// linked whole (link_whole) so these constructors are never dropped.
#define block_init(fn)                                             \
    static const int COBLOCK_CONCAT(block_init_dummy_, __LINE__) = \
        ::coblock::detail::record_block_init(fn)
