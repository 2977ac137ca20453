// blkdebug: the fault-injection filter (QEMU 7.2 block/blkdebug.c). One
// child, `image`, gets all I/O unchanged unless an armed inject-error rule
// matches the request; events raised on this node (block/debug_event.h) arm
// rules, change the state or suspend the raising coroutine at a breakpoint.
// Behaviour and messages: /work/shared/specs/blkdebug.md.
#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

#include "block/child.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/io.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "drivers/blkdebug/blkdebug_config.h"
#include "drivers/blkdebug/blkdebug_state.h"
#include "qapi/schema.h"

namespace coblock {
namespace {

using blkdebug::IoType;

// The runtime options (QEMU's runtime_opts list of blkdebug).
struct BlkdebugOptions {
    std::optional<std::string> config;
    std::optional<std::string> x_image;
    uint64_t align = 0;
    uint64_t max_transfer = 0;
    uint64_t opt_write_zero = 0;
    uint64_t max_write_zero = 0;
    uint64_t opt_discard = 0;
    uint64_t max_discard = 0;
};

const qapi::Schema<BlkdebugOptions> kBlkdebugSchema(
    "blkdebug",
    {
        qapi::string_field("config", &BlkdebugOptions::config, qapi::kNoDefault,
                           "Path to the configuration file"),
        qapi::string_field("x-image", &BlkdebugOptions::x_image, qapi::kNoDefault,
                           "[internal use only, will be removed]"),
        qapi::size_field("align", &BlkdebugOptions::align, "0", "Required alignment in bytes"),
        qapi::size_field("max-transfer", &BlkdebugOptions::max_transfer, "0",
                         "Maximum transfer size in bytes"),
        qapi::size_field("opt-write-zero", &BlkdebugOptions::opt_write_zero, "0",
                         "Optimum write zero alignment in bytes"),
        qapi::size_field("max-write-zero", &BlkdebugOptions::max_write_zero, "0",
                         "Maximum write zero size in bytes"),
        qapi::size_field("opt-discard", &BlkdebugOptions::opt_discard, "0",
                         "Optimum discard alignment in bytes"),
        qapi::size_field("max-discard", &BlkdebugOptions::max_discard, "0",
                         "Maximum discard size in bytes"),
    });

const BlockDriver& blkdebug_driver();

class BlkdebugNode final : public BlockNode {
  public:
    BlkdebugNode() : BlockNode(blkdebug_driver()) {}

    blkdebug::RuleState& rules() { return rules_; }

    Status init_limits(const BlkdebugOptions& o) {
        image_ = child("image");
        BlockNode* below = image_->node();
        const uint64_t int_max = INT_MAX;
        auto fail = [](const char* name, uint64_t value) {
            return invalid_argument("Cannot meet constraints with " + std::string(name) + " " +
                                    std::to_string(value));
        };
        if (o.align && (o.align >= int_max || (o.align & (o.align - 1))))
            return fail("align", o.align);
        const uint64_t a = std::max<uint64_t>(o.align, below->limits().request_alignment);
        if (o.max_transfer && (o.max_transfer >= int_max || o.max_transfer % a))
            return fail("max-transfer", o.max_transfer);
        if (o.opt_write_zero && (o.opt_write_zero >= int_max || o.opt_write_zero % a))
            return fail("opt-write-zero", o.opt_write_zero);
        const uint64_t zero_align = std::max(o.opt_write_zero, a);
        if (o.max_write_zero && (o.max_write_zero >= int_max || o.max_write_zero % zero_align))
            return fail("max-write-zero", o.max_write_zero);
        if (o.opt_discard && (o.opt_discard >= int_max || o.opt_discard % a))
            return fail("opt-discard", o.opt_discard);
        const uint64_t discard_align = std::max(o.opt_discard, a);
        if (o.max_discard && (o.max_discard >= int_max || o.max_discard % discard_align))
            return fail("max-discard", o.max_discard);

        // A filter inherits its child's limits; the options override them.
        BlockLimits& limits = mutable_limits();
        limits = below->limits();
        if (o.align) limits.request_alignment = static_cast<uint32_t>(o.align);
        if (o.max_transfer) limits.max_transfer = o.max_transfer;
        if (o.opt_write_zero) limits.zero_alignment = o.opt_write_zero;
        if (o.max_write_zero) limits.max_zero_write = o.max_write_zero;
        if (o.opt_discard) limits.discard_alignment = o.opt_discard;
        if (o.max_discard) limits.max_discard = o.max_discard;
        opt_write_zero_ = o.opt_write_zero;
        set_size(below->size());
        // QEMU passes FUA through when the child has it; QEMU 7.2's file
        // protocol never does, so writes through blkdebug get their FUA
        // emulated by a flush (the flush events of blkdebug.md §11.2).
        set_supported_write_flags(0);
        set_supported_zero_flags(below->supported_zero_flags() &
                                 (kReqFua | kReqMayUnmap | kReqNoFallback));
        return {};
    }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        TRY(rules_.co_check(offset, bytes, IoType::kRead));
        return co_child_preadv(image_, offset, bytes, qiov, flags);
    }

    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        TRY(rules_.co_check(offset, bytes, IoType::kWrite));
        return co_child_pwritev(image_, offset, bytes, qiov, flags);
    }

    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
        // Too small for the zero alignment: the block layer writes zeros
        // instead (checked as a write), as QEMU's blkdebug does.
        const uint64_t min = std::max<uint64_t>(limits().request_alignment, opt_write_zero_);
        if (bytes < min) return unsupported_error("blkdebug: zero write below the alignment");
        TRY(rules_.co_check(offset, bytes, IoType::kWriteZeroes));
        return co_child_pwrite_zeroes(image_, offset, bytes, flags);
    }

    Status co_pdiscard(uint64_t offset, uint64_t bytes) override {
        if (bytes < limits().request_alignment)
            return unsupported_error("blkdebug: discard below the alignment");
        TRY(rules_.co_check(offset, bytes, IoType::kDiscard));
        return co_child_pdiscard(image_, offset, bytes);
    }

    // QEMU's blkdebug flush is a flush_to_disk: the block layer skips it
    // when nothing was written here since the last flush.
    Status co_flush() override {
        if (write_gen_ == flushed_gen_ || open_flags().cache_no_flush) return {};
        return rules_.co_check(0, 0, IoType::kFlush);
    }

    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) override {
        TRY(rules_.co_check(offset, bytes, IoType::kBlockStatus));
        return BlockNode::co_block_status(offset, bytes, want_zero);
    }

    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override {
        TRY(co_child_truncate(image_, size, exact, prealloc, shrink_ok));
        set_size(image_->node()->size());
        return {};
    }

    int64_t allocated_size() override { return -1; }
    bool is_filter() const override { return true; }

    void co_debug_event(BlkdebugEvent event) override { rules_.co_event(event); }
    bool is_debug_node() const override { return true; }
    Status debug_breakpoint(std::string_view event, std::string_view tag) override {
        return rules_.add_breakpoint(event, tag);
    }
    Status debug_remove_breakpoint(std::string_view tag) override {
        return rules_.remove_breakpoint(tag);
    }
    Status debug_resume(std::string_view tag) override { return rules_.resume(tag); }
    bool debug_is_suspended(std::string_view tag) override { return rules_.is_suspended(tag); }

  private:
    blkdebug::RuleState rules_;
    BdrvChild* image_ = nullptr;
    uint64_t opt_write_zero_ = 0;
};

// Reads the config file as QEMU's read_config: fopen errors name the file
// as "blkdebug config file", read errors as "config file".
Result<std::string> read_config_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f)
        return Error{ErrorKind::kNotFound, errno,
                     std::string("Could not read blkdebug config file: ") + std::strerror(errno),
                     std::nullopt};
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
        text.append(buf, n);
    const bool failed = std::ferror(f);
    const int err = errno;
    std::fclose(f);
    if (failed)
        return Error{ErrorKind::kIo, err,
                     std::string("Cannot read config file: ") + std::strerror(err), std::nullopt};
    return text;
}

// take-child-perms.N / unshare-child-perms.N: only checked, as the graph
// has no per-driver permission hooks yet.
Status take_permission_lists(qapi::OptionsTree& options) {
    static const std::vector<std::string> kPerms = {"consistent-read", "write", "write-unchanged",
                                                    "resize"};
    for (const char* list : {"take-child-perms", "unshare-child-perms"}) {
        qapi::OptionsTree sub = options.extract_subtree(list);
        for (const auto& [key, value] : sub) {
            TRY(qapi::parse_enum_option("null", value.text, kPerms));
        }
    }
    return {};
}

Result<std::unique_ptr<BlockNode>> co_open_blkdebug(OpenContext& ctx) {
    qapi::OptionsTree& options = ctx.options();
    std::string filename = options.take("filename").value_or(ctx.filename());
    ASSIGN_OR_RETURN(BlkdebugOptions o, kBlkdebugSchema.parse(options));

    // blkdebug:[CONFIG]:IMAGE; another name is the image itself.
    std::optional<std::string> image_name = o.x_image;
    if (filename.rfind("blkdebug:", 0) == 0) {
        std::string rest = filename.substr(9);
        size_t colon = rest.find(':');
        if (colon == std::string::npos)
            return invalid_argument("blkdebug requires both config file and image path");
        if (colon > 0) o.config = rest.substr(0, colon);
        image_name = rest.substr(colon + 1);
    } else if (!filename.empty()) {
        image_name = filename;
    }

    blkdebug::RuleSections sections;
    if (o.config) {
        ASSIGN_OR_RETURN(std::string text, read_config_file(*o.config));
        TRY(blkdebug::parse_config_text(text, sections));
    }
    TRY(blkdebug::take_option_sections(options, sections));
    ASSIGN_OR_RETURN(blkdebug::RuleSpecs specs, blkdebug::make_rules(sections));
    TRY(take_permission_lists(options));

    auto node = std::make_unique<BlkdebugNode>();
    node->rules().load(specs);

    if (!image_name && !options.has("image") && !options.has_subtree("image"))
        return invalid_argument("A block device must be specified for \"image\"");
    TRY(ctx.co_open_child(*node, "image", kRoleFilteredChild, image_name.value_or(""),
                          /*probe_format=*/false));
    TRY(node->init_limits(o));

    BlockNode* below = node->child("image")->node();
    node->set_filename("blkdebug:" + o.config.value_or("") + ":" + below->filename());
    node->co_debug_event(BlkdebugEvent::kNone);
    return std::unique_ptr<BlockNode>(std::move(node));
}

const BlockDriver kBlkdebug{.name = "blkdebug",
                            .kind = DriverKind::kProtocol,
                            .protocol_prefixes = {"blkdebug"},
                            .co_open = co_open_blkdebug};

const BlockDriver& blkdebug_driver() {
    return kBlkdebug;
}

void register_blkdebug_driver() {
    register_block_driver(&kBlkdebug);
}

}  // namespace
}  // namespace coblock

block_init(coblock::register_blkdebug_driver);
