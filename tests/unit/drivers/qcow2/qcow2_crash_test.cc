// Crash consistency of the qcow2 driver (issue 5, Tests): a WriteLogNode
// below the qcow2 node records every write and flush of a random workload
// (allocating writes, overwrites, zero writes with and without MAY_UNMAP,
// discards, concurrent requests, a backing file). Every prefix of that log
// (each one ending at a flush, and every one in between), replayed onto a
// copy of the starting image, and random "some unflushed writes reached the
// disk" variants, must give an image that
//  - opens, and that coblock's check finds free of corruption (leaks are
//    allowed); qemu-img check agrees, on every prefix ending at a flush and
//    a sample of the others (one shell for all, so the test stays quick);
//  - holds, at every byte, what the guest read at its last flush whose
//    file-level I/O is entirely inside the prefix, or the value of a request
//    issued after that flush.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "tests/unit/drivers/qcow2/qcow2_test_util.h"
#include "tests/unit/drivers/qcow2/write_log_node.h"

namespace coblock {
namespace {

using testing::check_image;
using testing::create_qcow2;
using testing::have_tool;
using testing::TempDir;
using testing::WriteLogNode;

constexpr const char* kQemuImg = "/usr/bin/qemu-img";

// Opens the qcow2 driver directly on `file`; `backing`, when given, is
// attached as the backing node (the header's name is not opened).
Result<std::unique_ptr<BlockBackend>> open_on(BlockNode* file, BlockNode* backing, bool read_only,
                                              qapi::OptionsTree options = {}) {
    OpenFlags flags;
    flags.read_only = read_only;
    flags.no_backing = true;
    flags.discard = DiscardMode::kUnmap;
    Result<NodeRef> opened = run_sync([&]() -> Result<NodeRef> {
        OpenContext ctx("", std::move(options), flags);
        ctx.set_preopened_file(NodeRef(file));
        ASSIGN_OR_RETURN(std::unique_ptr<BlockNode> node, find_block_driver("qcow2")->co_open(ctx));
        NodeRef ref(node.release());
        ref->set_node_name(*allocate_node_name(""));
        ref->set_open_flags(flags);
        if (backing) {
            uint32_t perm, shared;
            default_child_permissions(kRoleBacking, flags, &perm, &shared);
            ASSIGN_OR_RETURN(
                std::unique_ptr<BdrvChild> edge,
                attach_child(ref.get(), {}, backing, "backing", kRoleBacking, perm, shared));
            ref->adopt_child(std::move(edge));
        }
        return ref;
    });
    if (!opened.ok()) return std::move(opened).error();
    uint32_t perm = kPermConsistentRead | (read_only ? 0u : uint32_t{kPermWrite | kPermResize});
    return BlockBackend::attach(opened->get(), perm, kPermConsistentRead | kPermWriteUnchanged);
}

struct Op {
    enum Kind { kWrite, kZero, kZeroUnmap, kDiscard } kind = kWrite;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint8_t value = 0;  // kWrite: unique per write, below 0x80 (backing bytes are above)
};

// What the guest saw at a completed guest flush, and where the flush ended
// in the log.
struct FlushPoint {
    size_t log_end = 0;
    size_t ops_before = 0;  // ops issued before this flush
    std::vector<uint8_t> guest;
};

struct Scenario {
    std::string name;
    uint64_t size = 0;
    uint64_t cluster_size = 0;
    qapi::OptionsTree create_options;
    qapi::OptionsTree open_options;  // for the workload
    bool with_backing = false;
    bool zero_without_fallback = false;  // the file zeroes fresh clusters (fallocate)
    uint32_t seed = 1;
    int batches = 10;
};

struct Workload {
    std::vector<Op> ops;
    std::vector<FlushPoint> flushes;  // flushes[0]: the starting state
};

std::vector<std::byte> to_bytes(const std::vector<uint8_t>& v) {
    std::vector<std::byte> out(v.size());
    std::memcpy(out.data(), v.data(), v.size());
    return out;
}

std::vector<std::byte> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(raw.size());
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

void spill(const std::string& path, const std::vector<std::byte>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
}

// QCOW2_CRASH_SEED=n varies every workload (to search for ordering bugs
// beyond the fixed seeds CI runs).
uint32_t extra_seed() {
    const char* s = std::getenv("QCOW2_CRASH_SEED");
    return s ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 0;
}

class Qcow2CrashTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(dir_.ok());
        block_layer_init();
    }

    // Runs batches of up to four concurrent requests, each batch followed by
    // a guest flush after which the whole guest disk is read and kept.
    Workload run_workload(const Scenario& sc, WriteLogNode* log, BlockNode* backing) {
        Workload w;
        auto blk = open_on(log, backing, false, sc.open_options);
        EXPECT_TRUE(blk.ok()) << (blk.ok() ? "" : blk.error().to_string());
        if (!blk.ok()) return w;
        auto read_all = [&] {
            std::vector<uint8_t> guest(sc.size);
            EXPECT_TRUE((*blk)->pread(0, guest.data(), guest.size()).ok());
            return guest;
        };
        w.flushes.push_back({log->log().size(), 0, read_all()});
        std::mt19937 rng(sc.seed + extra_seed());
        const uint64_t cluster = sc.cluster_size;
        uint8_t next_value = 1;
        for (int b = 0; b < sc.batches; ++b) {
            const int n = 1 + static_cast<int>(rng() % 4);
            std::vector<std::vector<uint8_t>> buffers(n);
            std::vector<IoVector> qiovs(n);
            int pending = n;
            auto done = [](void* opaque, int ret) {
                EXPECT_EQ(ret, 0);
                --*static_cast<int*>(opaque);
            };
            for (int i = 0; i < n; ++i) {
                Op op;
                const uint32_t r = rng() % 10;
                op.kind = r < 6   ? Op::kWrite
                          : r < 7 ? Op::kZero
                          : r < 8 ? Op::kZeroUnmap
                                  : Op::kDiscard;
                if (op.kind == Op::kWrite) {
                    op.length = 1 + rng() % (3 * cluster);
                    op.value = next_value++;
                } else {
                    op.length = cluster * (1 + rng() % 4);
                }
                op.offset = rng() % (sc.size - op.length);
                if (op.kind != Op::kWrite || rng() % 2) op.offset -= op.offset % 512;
                w.ops.push_back(op);
                switch (op.kind) {
                    case Op::kWrite:
                        buffers[i].assign(op.length, op.value);
                        qiovs[i] = IoVector(buffers[i].data(), buffers[i].size());
                        (*blk)->aio_pwritev(op.offset, &qiovs[i], done, &pending);
                        break;
                    case Op::kZero:
                    case Op::kZeroUnmap:
                        (*blk)->aio_pwrite_zeroes(
                            op.offset, op.length, done, &pending,
                            op.kind == Op::kZeroUnmap ? uint32_t{kReqMayUnmap} : 0u);
                        break;
                    case Op::kDiscard:
                        (*blk)->aio_pdiscard(op.offset, op.length, done, &pending);
                        break;
                }
            }
            (*blk)->drain();
            EXPECT_EQ(pending, 0);
            EXPECT_TRUE((*blk)->flush().ok());
            w.flushes.push_back({log->log().size(), w.ops.size(), read_all()});
        }
        return w;
    }

    // Checks one replayed image; returns false (after reporting) when it is
    // not acceptable.
    bool check_crash_image(const Scenario& sc, const Workload& w, const std::vector<uint8_t>& base,
                           BlockNode* backing, size_t prefix, const std::vector<std::byte>& image,
                           const std::string& what) {
        // The last guest flush whose I/O is all inside the prefix.
        const FlushPoint* fp = &w.flushes[0];
        for (const FlushPoint& f : w.flushes)
            if (f.log_end <= prefix) fp = &f;
        auto* mem = new WriteLogNode(image);
        NodeRef ref(mem);
        mem->set_node_name(*allocate_node_name(""));
        auto blk = open_on(mem, backing, true);
        if (!blk.ok()) {
            ADD_FAILURE() << what << ": does not open: " << blk.error().to_string();
            return false;
        }
        auto r = check_image(**blk);
        if (!r.ok() || r->corruptions != 0 || r->check_errors != 0) {
            std::string qemu_says;
            if (have_tool(kQemuImg)) {
                const std::string copy = dir_.path("failed.qcow2");
                spill(copy, image);
                qemu_says = testing::run_output(std::string(kQemuImg) + " check " + copy);
                if (const char* keep = std::getenv("QCOW2_CRASH_KEEP")) spill(keep, image);
            }
            ADD_FAILURE() << what << ": check finds "
                          << (r.ok() ? std::to_string(r->corruptions) + " corruptions"
                                     : r.error().to_string())
                          << "; qemu-img check says:\n"
                          << qemu_says;
            return false;
        }
        std::vector<uint8_t> guest(sc.size);
        Status st = (*blk)->pread(0, guest.data(), guest.size());
        if (!st.ok()) {
            ADD_FAILURE() << what << ": read fails: " << st.error().to_string();
            return false;
        }
        for (uint64_t b = 0; b < sc.size; ++b) {
            const uint8_t v = guest[b];
            if (v == fp->guest[b]) continue;
            bool allowed = false;
            for (size_t i = fp->ops_before; i < w.ops.size() && !allowed; ++i) {
                const Op& op = w.ops[i];
                if (b < op.offset || b >= op.offset + op.length) continue;
                allowed = op.kind == Op::kWrite ? v == op.value : (v == 0 || v == base[b]);
            }
            if (!allowed) {
                ADD_FAILURE() << what << ": guest byte " << b << " reads " << int(v)
                              << ", the last completed flush had " << int(fp->guest[b])
                              << " and no later request wrote that value there";
                return false;
            }
        }
        return true;
    }

    void run_scenario(const Scenario& sc) {
        // The starting image (and its raw backing file) made on disk, so
        // qemu-img check can open replayed copies next to them.
        const std::string img = dir_.path(sc.name + ".qcow2");
        const std::string base_path = dir_.path(sc.name + "-base.raw");
        std::vector<uint8_t> base(sc.size, 0);
        if (sc.with_backing) {
            std::mt19937 rng(sc.seed * 7);
            for (auto& b : base)
                b = static_cast<uint8_t>(0x80 | (rng() & 0x7f));
            spill(base_path, to_bytes(base));
            QCOW2_ASSERT_OK(create_qcow2(img, sc.size, sc.create_options, base_path, "raw"));
        } else {
            QCOW2_ASSERT_OK(create_qcow2(img, sc.size, sc.create_options));
        }
        auto* backing_node = sc.with_backing ? new WriteLogNode(to_bytes(base)) : nullptr;
        NodeRef backing_ref(backing_node);
        if (backing_node) backing_node->set_node_name(*allocate_node_name(""));

        auto* log = new WriteLogNode(slurp(img));
        NodeRef log_ref(log);
        log->set_node_name(*allocate_node_name(""));
        if (sc.zero_without_fallback) log->allow_zero_without_fallback();
        const Workload w = run_workload(sc, log, backing_node);
        ASSERT_FALSE(HasFailure());
        const size_t entries = log->log().size();
        if (std::getenv("QCOW2_CRASH_DUMP"))
            for (size_t i = 0; i < entries; ++i) {
                const auto& e = log->log()[i];
                std::printf("%zu: %s %llu+%zu\n", i,
                            e.kind == WriteLogNode::Entry::kFlush   ? "F"
                            : e.kind == WriteLogNode::Entry::kWrite ? (e.zero_write ? "Z" : "W")
                                                                    : "T",
                            (unsigned long long)e.offset, e.data.size());
            }

        // Every prefix in order, then subsets of unflushed writes.
        std::vector<std::string> for_qemu;
        std::mt19937 pick(sc.seed * 13);
        size_t points = 0, flush_points = 0;
        for (size_t prefix = 0; prefix <= entries; ++prefix) {
            const bool at_flush =
                prefix == entries || log->log()[prefix].kind == WriteLogNode::Entry::kFlush;
            const std::vector<std::byte> image = log->replay(prefix);
            ++points;
            flush_points += at_flush;
            if (!check_crash_image(
                    sc, w, base, backing_node, prefix, image,
                    sc.name + " prefix " + std::to_string(prefix) + "/" + std::to_string(entries)))
                return;
            if (at_flush || pick() % 8 == 0) {
                for_qemu.push_back(dir_.path(sc.name + "-p" + std::to_string(prefix) + ".qcow2"));
                spill(for_qemu.back(), image);
            }
            if (log->last_flush_before(prefix) + 2 < static_cast<long>(prefix)) {
                const uint32_t seed = static_cast<uint32_t>(prefix);
                const std::vector<std::byte> partial = log->replay_subset(prefix, seed);
                ++points;
                if (!check_crash_image(sc, w, base, backing_node, prefix, partial,
                                       sc.name + " prefix " + std::to_string(prefix) +
                                           " with some unflushed writes lost (seed " +
                                           std::to_string(seed) + ")"))
                    return;
                if (pick() % 8 == 0) {
                    for_qemu.push_back(
                        dir_.path(sc.name + "-s" + std::to_string(prefix) + ".qcow2"));
                    spill(for_qemu.back(), partial);
                }
            }
        }

        size_t qemu_checked = 0;
        if (have_tool(kQemuImg)) {
            // One shell runs every qemu-img check; exit 0 (clean) and 3
            // (leaks only) are acceptable, 2 (corruptions) and 1 are not.
            std::string script;
            for (const std::string& f : for_qemu)
                script += std::string(kQemuImg) + " check -f qcow2 " + f +
                          " >/dev/null 2>&1; echo \"$? " + f + "\"; ";
            std::istringstream results(testing::run_output("sh -c '" + script + "'"));
            std::string line;
            while (std::getline(results, line)) {
                ++qemu_checked;
                const int rc = std::atoi(line.c_str());
                if (rc != 0 && rc != 3)
                    ADD_FAILURE() << "qemu-img check exit " << line << ":\n"
                                  << testing::run_output(std::string(kQemuImg) + " check " +
                                                         line.substr(line.find(' ') + 1));
            }
            EXPECT_EQ(qemu_checked, for_qemu.size());
        } else {
            std::printf("qemu-img not installed: crash images checked by coblock only\n");
        }
        std::printf(
            "qcow2 crash test (%s): %zu ops, %zu log entries, %zu crash points checked "
            "(%zu ending at a flush), %zu also by qemu-img check\n",
            sc.name.c_str(), w.ops.size(), entries, points, flush_points, qemu_checked);
        EXPECT_GT(flush_points, static_cast<size_t>(sc.batches));
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
};

// 512-byte clusters: 64-entry L2 tables and 256-entry refcount blocks, so
// the workload allocates many L2 tables and refcount blocks.
TEST_F(Qcow2CrashTest, SmallClustersEveryPrefixConsistent) {
    Scenario sc;
    sc.name = "small";
    sc.size = 1 << 20;
    sc.cluster_size = 512;
    sc.create_options.set("cluster_size", "512");
    sc.seed = 3;
    sc.batches = 14;
    run_scenario(sc);
}

TEST_F(Qcow2CrashTest, BackingFileCopyOnWriteEveryPrefixConsistent) {
    Scenario sc;
    sc.name = "backing";
    sc.size = 2 << 20;
    sc.cluster_size = 4096;
    sc.create_options.set("cluster_size", "4096");
    sc.with_backing = true;
    sc.seed = 5;
    sc.batches = 14;
    run_scenario(sc);
}

// Version 2 has no zero flag: zero writes over a backing file write zeros.
TEST_F(Qcow2CrashTest, Version2WithBackingEveryPrefixConsistent) {
    Scenario sc;
    sc.name = "v2";
    sc.size = 1 << 20;
    sc.cluster_size = 1024;
    sc.create_options.set("cluster_size", "1024");
    sc.create_options.set("compat", "0.10");
    sc.with_backing = true;
    sc.seed = 7;
    sc.batches = 12;
    run_scenario(sc);
}

TEST_F(Qcow2CrashTest, ExtendedL2EveryPrefixConsistent) {
    Scenario sc;
    sc.name = "extl2";
    sc.size = 2 << 20;
    sc.cluster_size = 16384;
    sc.create_options.set("cluster_size", "16384");
    sc.create_options.set("extended_l2", "on");
    // 512-byte slices of the 16 KiB tables, four in the cache: evictions.
    sc.open_options.set("l2-cache-entry-size", "512");
    sc.open_options.set("l2-cache-size", "2048");
    sc.with_backing = true;
    sc.seed = 11;
    sc.batches = 12;
    run_scenario(sc);
}

// The file zeroes without fallback (as on a real file): allocating writes
// whose copy-on-write regions read as zeros zero the fresh clusters first,
// then write only the guest's bytes; the L2 update must still follow both.
TEST_F(Qcow2CrashTest, ZeroedAllocationEveryPrefixConsistent) {
    Scenario sc;
    sc.name = "zeroalloc";
    sc.size = 1 << 20;
    sc.cluster_size = 2048;
    sc.create_options.set("cluster_size", "2048");
    sc.zero_without_fallback = true;
    sc.seed = 13;
    sc.batches = 14;
    run_scenario(sc);
}

// Over a backing file only zero clusters take that path; unallocated ones
// still copy the backing data.
TEST_F(Qcow2CrashTest, ZeroedAllocationWithBackingEveryPrefixConsistent) {
    Scenario sc;
    sc.name = "zeroalloc-backing";
    sc.size = 1 << 20;
    sc.cluster_size = 4096;
    sc.create_options.set("cluster_size", "4096");
    sc.with_backing = true;
    sc.zero_without_fallback = true;
    sc.seed = 17;
    sc.batches = 14;
    run_scenario(sc);
}

// What reaches the file for a first 4 KiB write into a 64 KiB cluster.
class Qcow2AllocSpaceTest : public Qcow2CrashTest {
  protected:
    struct Outcome {
        std::vector<WriteLogNode::Entry> data_writes;  // excluding metadata
        std::vector<WriteLogNode::Entry> zero_writes;
        std::vector<uint8_t> guest;  // the cluster as read back
    };

    // Writes 4 KiB of 0x5a at guest offset 8 KiB of an empty 1 MiB image
    // (64 KiB clusters) and returns the file writes at or past the end of
    // the starting image (where the new data cluster lands).
    Outcome first_write(bool no_fallback, bool zero_cluster_first) {
        Outcome out;
        const std::string img = dir_.path("alloc.qcow2");
        EXPECT_TRUE(create_qcow2(img, 1 << 20, {}).ok());
        auto* log = new WriteLogNode(slurp(img));
        NodeRef ref(log);
        log->set_node_name(*allocate_node_name(""));
        if (no_fallback) log->allow_zero_without_fallback();
        auto blk = open_on(log, nullptr, false);
        EXPECT_TRUE(blk.ok());
        if (!blk.ok()) return out;
        if (zero_cluster_first) {
            EXPECT_TRUE((*blk)->pwrite_zeroes(0, 65536, 0).ok());
        }
        // The L2 table is allocated by this write too: remember where the
        // file ended before the data cluster to tell them apart.
        const size_t before = log->log().size();
        std::vector<uint8_t> buf(4096, 0x5a);
        EXPECT_TRUE((*blk)->pwrite(8192, buf.data(), buf.size()).ok());
        for (size_t i = before; i < log->log().size(); ++i) {
            const WriteLogNode::Entry& e = log->log()[i];
            if (e.kind != WriteLogNode::Entry::kWrite) continue;
            if (e.zero_write)
                out.zero_writes.push_back(e);
            else if ((e.data.size() == 4096 && static_cast<uint8_t>(e.data[0]) == 0x5a) ||
                     (e.data.size() == 65536 && static_cast<uint8_t>(e.data[8192]) == 0x5a))
                out.data_writes.push_back(e);  // L2 and refcount blocks have no 0x5a there
        }
        out.guest.resize(65536);
        EXPECT_TRUE((*blk)->pread(0, out.guest.data(), out.guest.size()).ok());
        return out;
    }

    static void expect_guest(const std::vector<uint8_t>& guest) {
        for (size_t b = 0; b < guest.size(); ++b)
            if (guest[b] != (b >= 8192 && b < 12288 ? 0x5a : 0)) {
                ADD_FAILURE() << "guest byte " << b << " reads " << int(guest[b]);
                return;
            }
    }
};

TEST_F(Qcow2AllocSpaceTest, ZeroesFreshClusterThenWritesOnlyGuestData) {
    const Outcome o = first_write(true, false);
    ASSERT_EQ(o.zero_writes.size(), 1u);
    EXPECT_EQ(o.zero_writes[0].data.size(), 65536u);
    EXPECT_EQ(o.zero_writes[0].offset % 65536, 0u);
    ASSERT_EQ(o.data_writes.size(), 1u);
    EXPECT_EQ(o.data_writes[0].data.size(), 4096u);
    EXPECT_EQ(o.data_writes[0].offset, o.zero_writes[0].offset + 8192);
    expect_guest(o.guest);
}

// A zero cluster reads as zeros too: same path.
TEST_F(Qcow2AllocSpaceTest, ZeroClusterIsZeroedThenWritten) {
    const Outcome o = first_write(true, true);
    ASSERT_EQ(o.zero_writes.size(), 1u);
    EXPECT_EQ(o.zero_writes[0].data.size(), 65536u);
    ASSERT_EQ(o.data_writes.size(), 1u);
    EXPECT_EQ(o.data_writes[0].data.size(), 4096u);
    EXPECT_EQ(o.data_writes[0].offset, o.zero_writes[0].offset + 8192);
    expect_guest(o.guest);
}

// Without zero writes that cannot fall back, the whole cluster is written
// with zero buffers around the guest data, as before.
TEST_F(Qcow2AllocSpaceTest, WithoutNoFallbackWritesWholeCluster) {
    const Outcome o = first_write(false, false);
    EXPECT_TRUE(o.zero_writes.empty());
    ASSERT_EQ(o.data_writes.size(), 1u);
    EXPECT_EQ(o.data_writes[0].data.size(), 65536u);
    expect_guest(o.guest);
}

}  // namespace
}  // namespace coblock
