// Whole-driver harness, one binary per format driver (FUZZ_DRIVER names it,
// e.g. "qcow2"): the input describes an image file held in a MemoryNode and
// a list of guest requests. The harness opens the driver on it, runs the
// requests (read, write, zero write, discard, flush), then the driver's check
// (when it has one) and closes the graph. Errors are fine; a crash, hang,
// leak or sanitizer report is a bug.
//
// Input layout (little-endian):
//   u8  flags     bit 0: open read-only; bit 1: store the VHDX header and
//                 region table checksums; bit 2: check with repair (leaks)
//   u8  nops      number of requests (at most kMaxOps)
//   nops x 16 bytes: u8 kind, u8 fill byte (bit 7: the request may run past the
//                 end of the disk), u16 unused, u32 length, u64 offset
//   segments until the end: u32 file offset, u16 length, length bytes
// The image file is all zeros except the segments, so a 4 MiB VHDX image
// with a few non-zero sectors costs a few KiB of input.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/check.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/node.h"
#include "coroutine/run_sync.h"
#include "drivers/memory/memory_node.h"
#include "formats/vhdx/common.h"
#include "fuzz/fuzz.h"

#ifndef FUZZ_DRIVER
#error "FUZZ_DRIVER must name the driver, e.g. -DFUZZ_DRIVER=\"qcow2\""
#endif

using namespace coblock;

namespace {

constexpr size_t kMaxOps = 16;
// Largest image file and largest growth the harness allows (MemoryNode
// refuses beyond it), so crafted offsets cannot exhaust memory.
constexpr uint64_t kMaxFileSize = 64ull << 20;
// Largest single request: enough to span clusters and blocks, cheap to run.
constexpr uint32_t kMaxRequest = 1u << 20;

enum OpKind : uint8_t { kRead, kWrite, kWriteZeroes, kDiscard, kFlush, kKinds };

struct Op {
    uint8_t kind = 0;
    uint8_t fill = 0;
    uint32_t length = 0;
    uint64_t offset = 0;
};

std::vector<std::byte> build_file(fuzz::InputReader& r) {
    std::vector<std::byte> file;
    while (r.remaining() >= 6) {
        uint64_t offset = r.take<uint32_t>();
        size_t length = r.take<uint16_t>();
        ByteSpan chunk = r.take_bytes(length);
        if (offset + chunk.size() > kMaxFileSize) continue;
        if (file.size() < offset + chunk.size()) file.resize(offset + chunk.size());
        std::copy(chunk.begin(), chunk.end(), file.begin() + offset);
    }
    return file;
}

// Stores the checksums a VHDX reader verifies first, so mutated fields
// behind them are reached.
void fix_vhdx_checksums(std::vector<std::byte>& file) {
    struct Structure {
        uint64_t offset;
        uint64_t size;
    };
    for (Structure s : {Structure{64 << 10, 4096}, Structure{128 << 10, 4096},
                        Structure{192 << 10, 64 << 10}, Structure{256 << 10, 64 << 10}})
        if (file.size() >= s.offset + s.size)
            vhdx::store_structure_checksum(MutableByteSpan(file).subspan(s.offset, s.size));
}

// FUZZ_DEBUG=1 in the environment prints what happened (for reproducers).
const bool g_debug = std::getenv("FUZZ_DEBUG") != nullptr;

void debug(const char* what, const Status& status) {
    if (g_debug)
        std::fprintf(stderr, "%s: %s\n", what, status.ok() ? "ok" : status.error().message.c_str());
}

// Opens FUZZ_DRIVER with `file` as its file child, the way co_open_node
// does once it has the preopened protocol node (no node names involved, so
// nothing outlives the run), and attaches a backend with the permissions
// BlockBackend::open would take.
Result<std::unique_ptr<BlockBackend>> open_on(const NodeRef& file, const OpenFlags& flags) {
    return run_sync([&]() -> Result<std::unique_ptr<BlockBackend>> {
        block_layer_init();
        const BlockDriver* driver = find_block_driver(FUZZ_DRIVER);
        FUZZ_CHECK(driver != nullptr && driver->co_open != nullptr);
        OpenContext ctx("", qapi::OptionsTree{}, flags);
        ctx.set_preopened_file(file);
        ASSIGN_OR_RETURN(std::unique_ptr<BlockNode> opened, driver->co_open(ctx));
        NodeRef node(opened.release());
        node->set_open_flags(ctx.flags());
        uint32_t perm = kPermConsistentRead;
        if (!ctx.flags().read_only) perm |= kPermWrite | kPermResize;
        return BlockBackend::attach(node.get(), perm, kPermConsistentRead | kPermWriteUnchanged);
    });
}

void run(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    const uint8_t flags = r.take<uint8_t>();
    const size_t nops = r.take<uint8_t>() % (kMaxOps + 1);
    std::vector<Op> ops(nops);
    for (Op& op : ops) {
        op.kind = r.take<uint8_t>();
        op.fill = r.take<uint8_t>();
        (void)r.take<uint16_t>();
        op.length = r.take<uint32_t>();
        op.offset = r.take<uint64_t>();
    }
    std::vector<std::byte> file = build_file(r);
    if (flags & 2) fix_vhdx_checksums(file);

    MemoryNodeOptions mem_options;
    mem_options.max_size = kMaxFileSize;
    NodeRef mem(new MemoryNode(std::move(file), mem_options));

    OpenFlags open_flags;
    open_flags.read_only = flags & 1;
    open_flags.no_backing = true;  // a backing file name must not open host files
    auto blk = open_on(mem, open_flags);
    debug("open " FUZZ_DRIVER, blk.ok() ? Status{} : Status(blk.error()));
    if (blk.ok()) {
        BlockBackend& b = **blk;
        const uint64_t length = b.length();
        std::vector<std::byte> buf;
        for (const Op& op : ops) {
            // Requests inside the disk, or (fill bit 7) possibly a little past its end.
            const bool past_end = op.fill & 0x80;
            const uint64_t offset = op.offset % (length + (past_end ? 64 << 10 : 0) + 1);
            uint64_t bytes = op.length % (kMaxRequest + 1);
            if (!past_end) bytes = std::min(bytes, length - offset);
            switch (op.kind % kKinds) {
                case kRead:
                    buf.assign(bytes, std::byte{0});
                    debug("read", b.pread(offset, buf.data(), bytes));
                    break;
                case kWrite:
                    buf.assign(bytes, std::byte{op.fill});
                    debug("write", b.pwrite(offset, buf.data(), bytes));
                    break;
                case kWriteZeroes:
                    debug(
                        "write zeroes",
                        b.pwrite_zeroes(offset, bytes, op.fill & 1 ? uint32_t{kReqMayUnmap} : 0u));
                    break;
                case kDiscard:
                    debug("discard", b.pdiscard(offset, bytes));
                    break;
                case kFlush:
                    debug("flush", b.flush());
                    break;
            }
        }
        BlockNode* root = b.root();
        run_sync([&] {
            CheckResult result;
            const CheckFix fix = (flags & 4) && !(flags & 1) ? CheckFix::kLeaks : CheckFix::kNone;
            debug("check", root->co_check(result, fix));
        });
        blk->reset();
    }
    // Everything above the file must be closed now: an edge left is a leak.
    FUZZ_CHECK(mem->parents().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    run(data, size);
    return 0;
}
