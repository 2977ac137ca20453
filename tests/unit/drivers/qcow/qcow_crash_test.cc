// Crash consistency of the qcow driver: a workload of guest writes (partial,
// multi-cluster, compressed, over a backing file) runs on a CrashNode that
// fails every write and flush after the Nth, for every N. Each crashed
// image must then open, and every byte must read as a value the guest could
// legitimately see:
//  - "all writes reached the disk" (CrashNode::bytes): what every
//    acknowledged write put there; bytes of the write that failed may hold
//    old or new data.
//  - "unflushed writes were lost" (CrashNode::durable) or "some of them
//    reached the disk" (CrashNode::durable_plus_subset): what the guest had
//    at its last successful flush, or the value of any later write.
#include <gtest/gtest.h>

#include <random>

#include "block/io.h"
#include "crash_node.h"
#include "qcow_test_util.h"

namespace coblock::qcow {
namespace {

using namespace coblock::qcow::testing;

struct Op {
    enum Kind { kWrite, kCompressed, kFlush } kind = kWrite;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint8_t value = 0;  // unique per op: index + 1
};

// A deterministic workload; every data op fills its range with its own value.
std::vector<Op> make_workload(uint64_t size, uint64_t cluster_size, uint32_t seed, int count) {
    std::mt19937 rng(seed);
    std::vector<Op> ops;
    std::vector<bool> touched(size / cluster_size, false);
    for (int i = 0; static_cast<int>(ops.size()) < count && i < 10 * count; ++i) {
        Op op;
        op.value = static_cast<uint8_t>(ops.size() + 1);
        const uint32_t r = rng() % 10;
        if (r == 0) {
            op.kind = Op::kFlush;
        } else if (r <= 2) {
            const uint64_t c = rng() % touched.size();
            if (touched[c]) continue;
            op.kind = Op::kCompressed;
            op.offset = c * cluster_size;
            op.length = cluster_size;
            touched[c] = true;
        } else {
            op.length = 1 + rng() % (2 * cluster_size + 100);
            op.offset = rng() % (size - op.length);
            for (uint64_t c = op.offset / cluster_size;
                 c <= (op.offset + op.length - 1) / cluster_size; ++c)
                touched[c] = true;
        }
        ops.push_back(op);
    }
    return ops;
}

struct Scenario {
    std::vector<std::byte> image;  // the qcow file before the workload
    std::vector<uint8_t> base;     // what the guest sees before the workload
    BlockNode* backing = nullptr;  // the backing node, if any
    uint64_t cluster_size = 0;
};

// Checks that `disk` (the guest view of a crashed image) holds, at every
// byte, either ref[b] or the value of an op in `allowed` that covers b.
void expect_legitimate(const std::vector<uint8_t>& disk, const std::vector<uint8_t>& ref,
                       const std::vector<Op>& ops, const std::vector<bool>& allowed,
                       const std::string& what) {
    size_t bad = 0;
    for (uint64_t b = 0; b < disk.size(); ++b) {
        const uint8_t v = disk[b];
        if (v == ref[b]) continue;
        const size_t index = static_cast<size_t>(v) - 1;
        if (v != 0 && index < ops.size() && allowed[index] && ops[index].kind != Op::kFlush &&
            b >= ops[index].offset && b < ops[index].offset + ops[index].length)
            continue;
        if (bad++ == 0)
            ADD_FAILURE() << what << ": byte " << b << " reads " << int(v) << ", expected "
                          << int(ref[b]) << " or the value of a write in flight";
    }
    EXPECT_EQ(bad, 0u) << what;
}

std::vector<uint8_t> guest_view(const std::vector<std::byte>& image, BlockNode* backing,
                                uint64_t size, const std::string& what) {
    MemImage mem = memory_image(image);
    auto blk = open_qcow(mem.mem, backing, /*read_only=*/true);
    if (!blk.ok()) {
        ADD_FAILURE() << what << ": crashed image does not open: " << blk.error().message;
        return {};
    }
    std::vector<uint8_t> out(size);
    Status s = (*blk)->pread(0, out.data(), out.size());
    if (!s.ok()) ADD_FAILURE() << what << ": read fails: " << s.error().message;
    return out;
}

// Returns the number of crash points tried.
int run_crash_points(const Scenario& sc, const std::vector<Op>& ops) {
    const uint64_t size = sc.base.size();
    for (uint64_t n = 0;; ++n) {
        auto* node = new CrashNode(sc.image, n);
        NodeRef ref(node);
        node->set_node_name(*allocate_node_name(""));

        std::vector<uint8_t> acked = sc.base;    // after every acknowledged op
        std::vector<uint8_t> flushed = sc.base;  // at the last successful guest flush
        size_t last_flush = 0;                   // ops before this index are in `flushed`
        size_t failed = ops.size();              // index of the op that failed
        {
            auto blk = open_qcow(node, sc.backing);
            if (!blk.ok()) {
                ADD_FAILURE() << "open failed: " << blk.error().message;
                return static_cast<int>(n);
            }
            for (size_t i = 0; i < ops.size(); ++i) {
                const Op& op = ops[i];
                Status s;
                if (op.kind == Op::kFlush) {
                    s = (*blk)->flush();
                    if (s.ok()) {
                        flushed = acked;
                        last_flush = i + 1;
                    }
                } else {
                    std::vector<uint8_t> data(op.length, op.value);
                    s = (*blk)->pwrite(
                        op.offset, data.data(), data.size(),
                        op.kind == Op::kCompressed ? uint32_t{kReqWriteCompressed} : 0u);
                    if (s.ok())
                        std::fill(acked.begin() + op.offset, acked.begin() + op.offset + op.length,
                                  op.value);
                }
                if (!s.ok()) {
                    failed = i;
                    break;
                }
            }
        }
        const std::string what = "crash at operation " + std::to_string(n);
        if (!node->crashed()) {
            // The whole workload fitted: the image must hold exactly `acked`.
            EXPECT_EQ(failed, ops.size());
            std::vector<bool> none(ops.size(), false);
            expect_legitimate(guest_view(node->bytes(), sc.backing, size, what), acked, ops, none,
                              what + " (no crash)");
            return static_cast<int>(n) + 1;
        }
        // All writes before the crash reached the disk.
        std::vector<bool> in_flight(ops.size(), false);
        if (failed < ops.size()) in_flight[failed] = true;
        expect_legitimate(guest_view(node->bytes(), sc.backing, size, what), acked, ops, in_flight,
                          what + " (written)");
        // Unflushed writes were lost.
        std::vector<bool> after_flush(ops.size(), false);
        for (size_t i = last_flush; i <= std::min(failed, ops.size() - 1); ++i)
            after_flush[i] = true;
        expect_legitimate(guest_view(node->durable(), sc.backing, size, what), flushed, ops,
                          after_flush, what + " (durable)");
        // Some unflushed writes reached the disk, some did not.
        for (uint32_t seed = 0; seed < 3; ++seed)
            expect_legitimate(
                guest_view(node->durable_plus_subset(static_cast<uint32_t>(n) * 7 + seed),
                           sc.backing, size, what),
                flushed, ops, after_flush, what + " (partly written back)");
        if (::testing::Test::HasFailure()) return static_cast<int>(n) + 1;
    }
}

TEST(QcowCrash, EveryCrashPointLeavesAConsistentImage) {
    // 512 KiB, 4 KiB clusters, 64-entry L2 tables (two tables).
    Scenario sc;
    sc.image = custom_image(512 << 10, 12, 6);
    sc.base.assign(512 << 10, 0);
    sc.cluster_size = 4096;
    const auto ops = make_workload(sc.base.size(), sc.cluster_size, 5, 48);
    const int points = run_crash_points(sc, ops);
    EXPECT_GT(points, 150);
    std::printf("qcow crash test (plain): %d crash points, %zu ops\n", points, ops.size());
}

TEST(QcowCrash, CopyOnWriteOverBackingSurvivesEveryCrashPoint) {
    Scenario sc;
    std::vector<std::byte> backing_bytes(512 << 10);
    std::vector<uint8_t> base = pattern(backing_bytes.size(), 3);
    for (auto& b : base)
        b = static_cast<uint8_t>(b | 0x80);  // never an op value (ops are < 128)
    std::memcpy(backing_bytes.data(), base.data(), base.size());
    MemImage backing = memory_image(backing_bytes);
    sc.image = custom_image(512 << 10, 12, 6, "base.img");
    sc.base = base;
    sc.backing = backing.mem;
    sc.cluster_size = 4096;
    const auto ops = make_workload(sc.base.size(), sc.cluster_size, 9, 40);
    const int points = run_crash_points(sc, ops);
    EXPECT_GT(points, 120);
    std::printf("qcow crash test (backing): %d crash points, %zu ops\n", points, ops.size());
}

}  // namespace
}  // namespace coblock::qcow
