// blkdebug rules from QEMU's config-file syntax and from inline options
// (QEMU 7.2 block/blkdebug.c read_config/add_rule, util/qemu-config.c
// qemu_config_parse and config_parse_qdict_section). Pure: the caller reads
// the file; this turns text and option trees into rule specs with QEMU's
// exact error texts. See /work/shared/specs/blkdebug.md §2-§4.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "block/debug_event.h"
#include "formats/result.h"
#include "qapi/options_tree.h"

namespace coblock::blkdebug {

// BlkdebugIOType, in enum order (bit i of a mask = type i).
enum class IoType { kRead, kWrite, kWriteZeroes, kDiscard, kFlush, kBlockStatus };
inline constexpr uint32_t io_type_bit(IoType type) {
    return 1u << static_cast<unsigned>(type);
}
// Every type but block-status, as QEMU's default iotype mask.
inline constexpr uint32_t kDefaultIoTypeMask =
    io_type_bit(IoType::kRead) | io_type_bit(IoType::kWrite) | io_type_bit(IoType::kWriteZeroes) |
    io_type_bit(IoType::kDiscard) | io_type_bit(IoType::kFlush);

// One section as read: its name, optional id and key/value pairs (a later
// value for the same key replaces the earlier one, keeping its position).
struct Section {
    std::string group;  // "inject-error", "set-state"
    std::optional<std::string> id;
    qapi::OptionsTree values;
};

// A validated section with typed values; `event` is still text because
// QEMU checks it only when the rule is created (after all sections).
struct SectionOptions {
    std::string group;
    std::optional<std::string> event;
    std::optional<std::string> iotype;
    int64_t state = 0;
    int64_t error = 5;  // EIO
    int64_t sector = -1;
    int64_t new_state = 0;
    bool once = false;
    bool immediately = false;
};

struct InjectErrorSpec {
    BlkdebugEvent event = BlkdebugEvent::kNone;
    int state = 0;  // 0: any
    int error = 5;
    int64_t offset = -1;  // sector * 512, -1: any
    uint32_t iotype_mask = kDefaultIoTypeMask;
    bool once = false;
    bool immediately = false;
};

struct SetStateSpec {
    BlkdebugEvent event = BlkdebugEvent::kNone;
    int state = 0;
    int new_state = 0;
};

// Sections of both groups in definition order (file first, then options).
struct RuleSections {
    std::vector<SectionOptions> inject_error;
    std::vector<SectionOptions> set_state;
};

// Parses config-file text (qemu_config_parse 7.2 quirks: column-0 '#',
// mandatory blank before '=', quoted values, blank-only lines are a parse
// error) and appends the validated sections to `out`.
Status parse_config_text(std::string_view text, RuleSections& out);

// Takes the "inject-error.*" and "set-state.*" keys of `options` (QemuOpts
// list syntax, indexed or not) and appends the sections to `out`.
Status take_option_sections(qapi::OptionsTree& options, RuleSections& out);

// Turns sections into rule specs (event and iotype names checked here,
// in QEMU's order: all inject-error sections, then all set-state ones).
struct RuleSpecs {
    std::vector<InjectErrorSpec> inject_error;
    std::vector<SetStateSpec> set_state;
};
Result<RuleSpecs> make_rules(const RuleSections& sections);

// "read", "write", "write-zeroes", "discard", "flush", "block-status".
std::optional<IoType> parse_io_type(std::string_view name);

}  // namespace coblock::blkdebug
