// No heap allocation per request on the hot path: counts operator new calls
// around steady-state requests on null-co through the coroutine, callback and
// spawn-per-request paths. Its own program, since it replaces operator new.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "block/backend.h"
#include "coroutine/run_sync.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace coblock {
namespace {

std::unique_ptr<BlockBackend> open_null(const char* driver) {
    qapi::OptionsTree options;
    options.set("driver", driver);
    options.set("size", "64M");
    auto blk = BlockBackend::open("", options, OpenFlags{});
    EXPECT_TRUE(blk.ok());
    return std::move(*blk);
}

constexpr int kRequests = 10000;

TEST(HotPath, CounterSeesAllocations) {
    long before = g_allocations.load();
    auto* volatile p = new std::vector<int>(100);
    delete p;
    EXPECT_GE(g_allocations.load() - before, 2);
}

TEST(HotPath, CoroutineReadsAllocateNothing) {
    for (const char* driver : {"null-co", "null-aio"}) {
        auto blk = open_null(driver);
        std::vector<char> buf(4096);
        run_sync([&] {
            IoVector iov(buf.data(), buf.size());
            for (int i = 0; i < 100; ++i)
                ASSERT_TRUE(blk->co_preadv(i * 4096, 4096, iov).ok());
            long before = g_allocations.load();
            for (int i = 0; i < kRequests; ++i) {
                IoVector req(buf.data(), buf.size());
                ASSERT_TRUE(blk->co_preadv((i % 1000) * 4096ull, 4096, req).ok());
                ASSERT_TRUE(blk->co_pwritev((i % 1000) * 4096ull, 4096, req).ok());
            }
            EXPECT_EQ(g_allocations.load() - before, 0) << driver;
        });
    }
}

TEST(HotPath, CallbackRequestsAllocateNothing) {
    auto blk = open_null("null-co");
    std::vector<char> buf(4096);
    IoVector iov(buf.data(), buf.size());
    int completed = 0;
    auto done = [](void* opaque, int) { ++*static_cast<int*>(opaque); };
    for (int i = 0; i < 64; ++i)
        blk->aio_preadv(0, &iov, done, &completed);
    blk->drain();
    long before = g_allocations.load();
    for (int i = 0; i < kRequests; ++i) {
        blk->aio_preadv((i % 1000) * 4096ull, &iov, done, &completed);
        if (i % 32 == 31) blk->drain();
    }
    blk->drain();
    EXPECT_EQ(g_allocations.load() - before, 0);
    EXPECT_EQ(completed, 64 + kRequests);
}

TEST(HotPath, SpawnPerRequestAllocatesNothing) {
    auto blk = open_null("null-co");
    std::vector<char> buf(4096);
    run_sync([&] {
        for (int i = 0; i < 64; ++i)
            spawn([&] {
                IoVector iov(buf.data(), buf.size());
                (void)blk->co_preadv(0, 4096, iov);
            });
        long before = g_allocations.load();
        for (int i = 0; i < kRequests; ++i)
            spawn([&, i] {
                IoVector iov(buf.data(), buf.size());
                (void)blk->co_preadv((i % 1000) * 4096ull, 4096, iov);
            });
        EXPECT_EQ(g_allocations.load() - before, 0);
    });
}

}  // namespace
}  // namespace coblock
