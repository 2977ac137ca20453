// I/O through the file driver on real files, for each aio path (threads,
// libaio, io_uring) with and without O_DIRECT, driven through BlockBackend
// and the request layer (aligned and unaligned ranges, many requests in
// flight, vectored buffers, FUA, flush, zero writes, discard).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "block/backend.h"
#include "block/io.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "drivers/file/linux_aio.h"
#include "tests/unit/drivers/file/file_test_util.h"

namespace coblock {
namespace {

using testing::file_node;
using testing::make_file;
using testing::open_file_backend;
using testing::pattern;
using testing::read_file;
using testing::TempDir;

struct IoMode {
    const char* name;
    AioMode aio;
    bool direct;
    const char* base_dir;
};

void PrintTo(const IoMode& mode, std::ostream* os) {
    *os << mode.name;
}

class FileIoTest : public ::testing::TestWithParam<IoMode> {
  protected:
    void SetUp() override {
        dir_ = std::make_unique<TempDir>(GetParam().base_dir);
        ASSERT_TRUE(dir_->ok());
        path_ = dir_->path("disk.img");
        make_file(path_, kSize);
    }

    std::unique_ptr<BlockBackend> open(bool discard_unmap = false) {
        OpenFlags flags;
        flags.cache_direct = GetParam().direct;
        flags.aio = GetParam().aio;
        if (discard_unmap) flags.discard = DiscardMode::kUnmap;
        auto blk = open_file_backend(path_, flags);
        if (!blk.ok()) {
            ADD_FAILURE() << "open failed: " << blk.error().to_string();
            return nullptr;
        }
        return std::move(*blk);
    }

    // The aio path must be the one asked for; io_uring may be refused by the
    // kernel, in which case the node fell back (and the test says so).
    bool check_mode(BlockBackend& blk) {
        FileNode* node = file_node(blk);
        if (node == nullptr) return false;
        if (node->aio_mode() != GetParam().aio) {
            if (GetParam().aio == AioMode::kIoUring) return false;
            ADD_FAILURE() << "aio mode not in use";
        }
        return true;
    }

    static constexpr uint64_t kSize = 4 << 20;
    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    std::unique_ptr<TempDir> dir_;
    std::string path_;
};

TEST_P(FileIoTest, AlignedAndUnalignedWritesReadBack) {
    auto blk = open();
    ASSERT_TRUE(blk);
    if (!check_mode(*blk)) GTEST_SKIP() << "io_uring unavailable: fell back to threads";

    auto aligned = pattern(65536, 1);
    ASSERT_TRUE(blk->pwrite(0, aligned.data(), aligned.size()).ok());
    auto unaligned = pattern(3001, 2);
    ASSERT_TRUE(blk->pwrite(70001, unaligned.data(), unaligned.size()).ok());

    std::vector<uint8_t> back(65536);
    ASSERT_TRUE(blk->pread(0, back.data(), back.size()).ok());
    EXPECT_EQ(back, aligned);
    std::vector<uint8_t> back2(3001);
    ASSERT_TRUE(blk->pread(70001, back2.data(), back2.size()).ok());
    EXPECT_EQ(back2, unaligned);
    // Bytes around the unaligned write were preserved (read-modify-write).
    std::vector<uint8_t> around(2);
    ASSERT_TRUE(blk->pread(70000, around.data(), 1).ok());
    ASSERT_TRUE(blk->pread(73002, around.data() + 1, 1).ok());
    EXPECT_EQ(around, std::vector<uint8_t>({0, 0}));

    ASSERT_TRUE(blk->flush().ok());
    EXPECT_EQ(read_file(path_, 0, 65536), aligned);
    EXPECT_EQ(read_file(path_, 70001, 3001), unaligned);
}

TEST_P(FileIoTest, ManyConcurrentRequestsFromCoroutines) {
    auto blk = open();
    ASSERT_TRUE(blk);
    if (!check_mode(*blk)) GTEST_SKIP() << "io_uring unavailable: fell back to threads";

    // More requests than the 128-deep libaio/io_uring queues hold.
    constexpr int kRequests = 300;
    constexpr size_t kChunk = 4096;
    std::vector<AlignedBuffer> bufs;
    for (int i = 0; i < kRequests; ++i) {
        bufs.emplace_back(kChunk);
        std::memset(bufs.back().data(), i & 0xff, kChunk);
    }
    int failures = 0;
    auto run_all = [&](bool is_write) {
        run_sync(loop_, [&] {
            int running = 0;
            for (int i = 0; i < kRequests; ++i) {
                ++running;
                spawn([&, i] {
                    IoVector qiov = bufs[i].iov();
                    // Interleaved offsets so neighbours complete out of order.
                    const uint64_t offset = static_cast<uint64_t>((i * 37) % kRequests) * kChunk;
                    Status s = is_write ? blk->co_pwritev(offset, kChunk, qiov)
                                        : blk->co_preadv(offset, kChunk, qiov);
                    if (!s.ok()) ++failures;
                    --running;
                });
            }
            while (running > 0) {
                Coroutine* self = Coroutine::self();
                loop_.schedule_oneshot([self] { wake(self); });
                yield();
            }
        });
    };
    run_all(true);
    EXPECT_EQ(failures, 0);
    for (auto& b : bufs)
        std::memset(b.data(), 0xaa, kChunk);
    run_all(false);
    EXPECT_EQ(failures, 0);
    for (int i = 0; i < kRequests; ++i) {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(bufs[i].data());
        EXPECT_TRUE(p[0] == (i & 0xff) && p[kChunk - 1] == (i & 0xff)) << "request " << i;
    }
}

TEST_P(FileIoTest, VectoredRequestBeyondTheInlineIovecs) {
    auto blk = open();
    ASSERT_TRUE(blk);
    if (!check_mode(*blk)) GTEST_SKIP() << "io_uring unavailable: fell back to threads";

    // 20 separate buffers: more slices than the 16 kept on the stack.
    constexpr int kSlices = 20;
    std::vector<AlignedBuffer> bufs;
    IoVector qiov;
    for (int i = 0; i < kSlices; ++i) {
        bufs.emplace_back(4096);
        std::memset(bufs.back().data(), 0x40 + i, 4096);
    }
    for (auto& b : bufs)
        qiov.append(b.data(), b.size());
    ASSERT_EQ(qiov.slice_count(), static_cast<size_t>(kSlices));
    Status s = run_sync(loop_, [&] { return blk->co_pwritev(8192, qiov.size(), qiov); });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    ASSERT_TRUE(blk->flush().ok());
    for (int i = 0; i < kSlices; ++i)
        EXPECT_EQ(read_file(path_, 8192 + i * 4096ull, 4096), std::vector<uint8_t>(4096, 0x40 + i));

    for (auto& b : bufs)
        std::memset(b.data(), 0, 4096);
    s = run_sync(loop_, [&] { return blk->co_preadv(8192, qiov.size(), qiov); });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    for (int i = 0; i < kSlices; ++i)
        EXPECT_EQ(reinterpret_cast<const uint8_t*>(bufs[i].data())[100], 0x40 + i);
}

TEST_P(FileIoTest, FuaWritesAndFlush) {
    auto blk = open();
    ASSERT_TRUE(blk);
    if (!check_mode(*blk)) GTEST_SKIP() << "io_uring unavailable: fell back to threads";
    EXPECT_EQ(blk->root()->supported_write_flags() & kReqFua, kReqFua);
    auto data = pattern(8192, 9);
    ASSERT_TRUE(blk->pwrite(4096, data.data(), data.size(), kReqFua).ok());
    ASSERT_TRUE(blk->flush().ok());
    EXPECT_EQ(read_file(path_, 4096, 8192), data);
}

TEST_P(FileIoTest, ZeroWritesAndDiscardReadAsZeros) {
    auto blk = open(/*discard_unmap=*/true);
    ASSERT_TRUE(blk);
    if (!check_mode(*blk)) GTEST_SKIP() << "io_uring unavailable: fell back to threads";
    auto data = pattern(1 << 20, 3);
    ASSERT_TRUE(blk->pwrite(0, data.data(), data.size()).ok());

    // Plain zero write, with unmap, and with no fallback allowed (the file
    // system does it natively, so it must not report unsupported).
    ASSERT_TRUE(blk->pwrite_zeroes(4096, 65536).ok());
    ASSERT_TRUE(blk->pwrite_zeroes(131072, 65536, kReqMayUnmap).ok());
    ASSERT_TRUE(blk->pwrite_zeroes(262144, 65536, kReqNoFallback).ok());
    ASSERT_TRUE(blk->pdiscard(524288, 65536).ok());

    std::vector<uint8_t> back(1 << 20);
    ASSERT_TRUE(blk->pread(0, back.data(), back.size()).ok());
    auto expect = data;
    std::fill(expect.begin() + 4096, expect.begin() + 4096 + 65536, 0);
    std::fill(expect.begin() + 131072, expect.begin() + 131072 + 65536, 0);
    std::fill(expect.begin() + 262144, expect.begin() + 262144 + 65536, 0);
    std::fill(expect.begin() + 524288, expect.begin() + 524288 + 65536, 0);  // punched
    EXPECT_EQ(back, expect);

    // The unmapped range is a hole now.
    auto status =
        run_sync(loop_, [&] { return co_node_block_status(blk->root(), 131072, 65536, true); });
    ASSERT_TRUE(status.ok()) << status.error().to_string();
    EXPECT_TRUE(status->flags & kStatusZero);
    EXPECT_FALSE(status->flags & kStatusData);
}

// A request the kernel refuses at io_submit (a bad fd) fails with the errno
// in the coroutine that submitted it.
TEST(LinuxAio, RefusedSubmissionFailsItsOwnRequest) {
    EventLoop loop;
    EventLoop::Scope scope(loop);
    auto aio = LinuxAio::acquire(loop);
    if (!aio.ok()) GTEST_SKIP() << "libaio unavailable: " << aio.error().message;
    char byte = 0;
    iovec iov{&byte, 1};
    const long ret = run_sync(loop, [&] { return (*aio)->co_submit(false, -1, &iov, 1, 0, 0); });
    EXPECT_EQ(ret, -EBADF);
    EXPECT_EQ((*aio)->in_flight(), 0u);
}

const IoMode kModes[] = {
    {"threads_writeback", AioMode::kThreads, false, "/tmp"},
    {"threads_none", AioMode::kThreads, true, "/tmp"},
    {"native_none", AioMode::kNative, true, "/tmp"},
    {"native_none_tmpfs", AioMode::kNative, true, "/dev/shm"},
#ifdef COBLOCK_HAVE_IO_URING
    {"io_uring_writeback", AioMode::kIoUring, false, "/tmp"},
    {"io_uring_none", AioMode::kIoUring, true, "/tmp"},
#endif
};

INSTANTIATE_TEST_SUITE_P(Modes, FileIoTest, ::testing::ValuesIn(kModes),
                         [](const ::testing::TestParamInfo<IoMode>& info) {
                             return std::string(info.param.name);
                         });

}  // namespace
}  // namespace coblock
