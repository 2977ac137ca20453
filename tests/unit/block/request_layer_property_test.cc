// Property test of the request layer over an in-memory protocol node:
// thousands of random unaligned reads, writes, zero writes and discards from
// many coroutines at once, checked against a shadow buffer. Coroutines own
// disjoint byte ranges whose boundaries fall inside alignment blocks, so the
// read-modify-write of neighbours overlaps and only correct serialisation
// keeps every byte right. Seeds are fixed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "block/backend.h"
#include "block/graph.h"
#include "coroutine/run_sync.h"
#include "drivers/memory/memory_node.h"

namespace coblock {
namespace {

struct Scenario {
    const char* name;
    uint32_t request_alignment;
    uint32_t memory_alignment;
    uint64_t max_transfer;
    bool native_zeroes;
    uint32_t seed;
};

class RequestLayerProperty : public ::testing::TestWithParam<Scenario> {};

TEST_P(RequestLayerProperty, RandomConcurrentOpsMatchShadow) {
    const Scenario sc = GetParam();
    constexpr size_t kDiskSize = 1 << 20;
    constexpr int kWorkers = 16;
    constexpr int kOpsPerWorker = 250;

    std::mt19937_64 rng(sc.seed);
    std::vector<std::byte> initial(kDiskSize);
    for (auto& b : initial)
        b = static_cast<std::byte>(rng());
    std::vector<std::byte> shadow = initial;

    MemoryNodeOptions mopts;
    mopts.limits.request_alignment = sc.request_alignment;
    mopts.limits.memory_alignment = sc.memory_alignment;
    mopts.limits.max_transfer = sc.max_transfer;
    mopts.native_zero_writes = sc.native_zeroes;
    mopts.async = true;
    std::mt19937 completion_rng(sc.seed + 1);
    mopts.complete_now = [&completion_rng] { return completion_rng() % 3 != 0; };
    auto* mem = new MemoryNode(initial, mopts);
    NodeRef node(mem);
    ASSERT_TRUE(allocate_node_name("mem").ok());
    mem->set_node_name("mem");
    OpenFlags flags;
    flags.discard = DiscardMode::kUnmap;
    mem->set_open_flags(flags);
    auto blk = BlockBackend::attach(mem, kPermConsistentRead | kPermWrite | kPermResize,
                                    kPermConsistentRead);
    ASSERT_TRUE(blk.ok()) << blk.error().message;

    // Random boundaries, deliberately not aligned.
    std::vector<uint64_t> cuts = {0, kDiskSize};
    for (int i = 1; i < kWorkers; ++i)
        cuts.push_back(rng() % kDiskSize);
    std::sort(cuts.begin(), cuts.end());

    int failures = 0;
    int running = 0;
    uint64_t ops = 0;
    run_sync([&] {
        for (int w = 0; w < kWorkers; ++w) {
            const uint64_t lo = cuts[w], hi = cuts[w + 1];
            if (hi <= lo) continue;
            ++running;
            spawn([&, lo, hi, w] {
                std::mt19937_64 r(sc.seed * 1000 + w);
                for (int i = 0; i < kOpsPerWorker && failures == 0; ++i) {
                    uint64_t off = lo + r() % (hi - lo);
                    uint64_t len = 1 + r() % std::min<uint64_t>(hi - off, 3 * 4096 + 77);
                    // Misaligned buffers on purpose: +1..+7 into a bigger block.
                    size_t skew = r() % 8;
                    std::vector<std::byte> buf(len + 8);
                    IoVector iov(buf.data() + skew, len);
                    int op = static_cast<int>(r() % 10);
                    Status s;
                    if (op < 4) {
                        s = (*blk)->co_preadv(off, len, iov);
                        if (s.ok() &&
                            std::memcmp(buf.data() + skew, shadow.data() + off, len) != 0) {
                            ADD_FAILURE() << sc.name << ": read mismatch at " << off << "+" << len;
                            ++failures;
                        }
                    } else if (op < 8) {
                        for (uint64_t k = 0; k < len; ++k)
                            buf[skew + k] = static_cast<std::byte>(r());
                        // Split into two slices to exercise scatter-gather.
                        IoVector sg = IoVector::concat(iov.slice(0, len / 2),
                                                       iov.slice(len / 2, len - len / 2));
                        std::memcpy(shadow.data() + off, buf.data() + skew, len);
                        s = (*blk)->co_pwritev(off, len, sg);
                    } else if (op == 8) {
                        std::memset(shadow.data() + off, 0, len);
                        s = (*blk)->co_pwrite_zeroes(off, len, kReqMayUnmap);
                    } else {
                        // Discard is advisory: only whole aligned blocks inside
                        // our range may change, and they read as zeros here.
                        uint64_t a = sc.request_alignment;
                        uint64_t b = (off + a - 1) / a * a, e = (off + len) / a * a;
                        if (b < e && b >= lo && e <= hi) {
                            std::memset(shadow.data() + b, 0, e - b);
                            s = (*blk)->co_pdiscard(b, e - b);
                        }
                    }
                    ++ops;
                    if (!s.ok()) {
                        ADD_FAILURE()
                            << sc.name << ": op " << op << " failed: " << s.error().message;
                        ++failures;
                    }
                }
                --running;
            });
        }
        while (running > 0) {
            Coroutine* self = Coroutine::self();
            BottomHalf bh(EventLoop::current(), [self] { wake(self); });
            bh.schedule();
            yield();
        }
    });
    EXPECT_EQ(failures, 0);
    EXPECT_GT(ops, 3000u);
    EXPECT_TRUE(std::memcmp(mem->bytes().data(), shadow.data(), kDiskSize) == 0)
        << sc.name << ": final contents differ from the shadow";
    blk->reset();
}

INSTANTIATE_TEST_SUITE_P(Limits, RequestLayerProperty,
                         ::testing::Values(Scenario{"byte", 1, 1, 0, true, 1},
                                           Scenario{"sector", 512, 1, 0, true, 2},
                                           Scenario{"direct4k", 4096, 4096, 0, true, 3},
                                           Scenario{"split", 512, 512, 8192, false, 4},
                                           Scenario{"odd_max", 4096, 512, 12288, true, 5},
                                           Scenario{"big_block", 65536, 4096, 131072, false, 6}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace coblock
