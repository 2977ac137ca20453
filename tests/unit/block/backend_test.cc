// BlockBackend: synchronous, coroutine and callback calls; bounds; the
// loop driven from a foreign epoll.
#include "block/backend.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <vector>

#include "coroutine/run_sync.h"
#include "drivers/memory/memory_node.h"

namespace coblock {
namespace {

std::unique_ptr<BlockBackend> memory_backend(MemoryNode** out, size_t size, bool async) {
    MemoryNodeOptions options;
    options.async = async;
    auto* mem = new MemoryNode(std::vector<std::byte>(size), options);
    NodeRef ref(mem);
    auto name = allocate_node_name("");
    mem->set_node_name(*name);
    *out = mem;
    auto blk = BlockBackend::attach(mem, kPermConsistentRead | kPermWrite | kPermResize,
                                    kPermConsistentRead);
    EXPECT_TRUE(blk.ok());
    return std::move(*blk);
}

TEST(Backend, SyncReadWriteRoundTrip) {
    MemoryNode* mem;
    auto blk = memory_backend(&mem, 1 << 16, true);
    std::vector<char> out(1000, 'q'), in(1000);
    ASSERT_TRUE(blk->pwrite(123, out.data(), out.size()).ok());
    ASSERT_TRUE(blk->pread(123, in.data(), in.size()).ok());
    EXPECT_EQ(in, out);
    ASSERT_TRUE(blk->flush().ok());
    EXPECT_GE(mem->flushes(), 1u);
}

TEST(Backend, OutOfRangeIsAnError) {
    MemoryNode* mem;
    auto blk = memory_backend(&mem, 4096, false);
    char buf[16];
    Status s = blk->pread(4090, buf, 16);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().kind, ErrorKind::kOutOfRange);
    EXPECT_EQ(s.error().as_errno(), EIO);
}

struct Completion {
    int calls = 0;
    int ret = 1;
    static void done(void* opaque, int ret) {
        auto* c = static_cast<Completion*>(opaque);
        ++c->calls;
        c->ret = ret;
    }
};

TEST(Backend, CallbackApiCompletesInTheLoopNeverInline) {
    for (bool async : {false, true}) {
        MemoryNode* mem;
        auto blk = memory_backend(&mem, 1 << 16, async);
        std::vector<char> data(4096, 'z');
        IoVector iov(data.data(), data.size());
        Completion write_done, read_done, flush_done, bad_done;
        blk->aio_pwritev(8192, &iov, Completion::done, &write_done);
        EXPECT_EQ(write_done.calls, 0) << "completion ran inside the submit call";
        blk->aio_flush(Completion::done, &flush_done);
        IoVector past(data.data(), data.size());
        blk->aio_preadv(1 << 16, &past, Completion::done, &bad_done);
        blk->drain();
        EXPECT_EQ(write_done.calls, 1);
        EXPECT_EQ(write_done.ret, 0);
        EXPECT_EQ(flush_done.ret, 0);
        EXPECT_EQ(bad_done.ret, -EIO);
        std::vector<char> back(4096);
        IoVector back_iov(back.data(), back.size());
        blk->aio_preadv(8192, &back_iov, Completion::done, &read_done);
        blk->drain();
        EXPECT_EQ(read_done.ret, 0);
        EXPECT_EQ(back, data);
    }
}

TEST(Backend, LoopDrivenFromForeignEpoll) {
    MemoryNode* mem;
    auto blk = memory_backend(&mem, 1 << 16, true);
    int emulator_epoll = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ASSERT_EQ(epoll_ctl(emulator_epoll, EPOLL_CTL_ADD, blk->loop().fd(), &ev), 0);
    std::vector<char> data(512, 'e');
    IoVector iov(data.data(), data.size());
    Completion done;
    blk->aio_pwritev(0, &iov, Completion::done, &done);
    for (int spins = 0; done.calls == 0 && spins < 1000; ++spins) {
        int64_t t = blk->loop().timeout_ns();
        epoll_event got;
        epoll_wait(emulator_epoll, &got, 1, t < 0 ? 100 : static_cast<int>(t / 1000000));
        blk->loop().poll(false);
    }
    EXPECT_EQ(done.calls, 1);
    EXPECT_EQ(done.ret, 0);
    close(emulator_epoll);
}

TEST(Backend, WritethroughFlushesEveryWrite) {
    MemoryNode* mem;
    auto blk = memory_backend(&mem, 1 << 16, false);
    blk->set_writethrough(true);
    char buf[512] = {};
    ASSERT_TRUE(blk->pwrite(0, buf, sizeof buf).ok());
    ASSERT_TRUE(blk->pwrite(512, buf, sizeof buf).ok());
    EXPECT_EQ(mem->flushes(), 2u);
}

TEST(Backend, ZeroWriteFallsBackToBuffersUnlessNoFallback) {
    MemoryNodeOptions options;
    options.native_zero_writes = false;
    auto* mem = new MemoryNode(std::vector<std::byte>(8192, std::byte{0x11}), options);
    NodeRef ref(mem);
    mem->set_node_name(*allocate_node_name(""));
    auto blk = BlockBackend::attach(mem, kPermConsistentRead | kPermWrite, kPermConsistentRead);
    ASSERT_TRUE(blk.ok());
    ASSERT_TRUE((*blk)->pwrite_zeroes(100, 1000).ok());
    EXPECT_EQ(mem->bytes()[100], std::byte{0});
    EXPECT_EQ(mem->bytes()[1099], std::byte{0});
    EXPECT_EQ(mem->bytes()[1100], std::byte{0x11});
    Status refused = (*blk)->pwrite_zeroes(0, 4096, kReqNoFallback);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, ErrorKind::kUnsupported);
}

TEST(Backend, CompressedWriteRefusedByNodesWithoutCompression) {
    MemoryNode* mem;
    auto blk = memory_backend(&mem, 1 << 16, false);
    char buf[512] = {};
    Status s = blk->pwrite(0, buf, sizeof buf, kReqWriteCompressed);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().as_errno(), ENOTSUP);
    EXPECT_EQ(mem->writes(), 0u);
}

TEST(Backend, FuaIsEmulatedWithFlush) {
    MemoryNode* mem;
    auto blk = memory_backend(&mem, 1 << 16, false);
    char buf[512] = {};
    ASSERT_TRUE(blk->pwrite(0, buf, sizeof buf, kReqFua).ok());
    EXPECT_EQ(mem->flushes(), 1u);
}

}  // namespace
}  // namespace coblock
