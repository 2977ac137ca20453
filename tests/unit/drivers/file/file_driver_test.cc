// The file driver's registration, options (QEMU 7.2 names and error texts),
// O_DIRECT limits, block status of sparse files, truncate with
// preallocation, allocated size and image creation.
#include <gtest/gtest.h>

#include <string>

#include "block/create.h"
#include "block/driver.h"
#include "block/io.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "qapi/help.h"
#include "tests/unit/drivers/file/file_test_util.h"

namespace coblock {
namespace {

using testing::allocated_bytes;
using testing::file_node;
using testing::file_size;
using testing::make_file;
using testing::open_file_backend;
using testing::pattern;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

class FileDriverTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(dir_.ok());
        path_ = dir_.path("disk.img");
    }
    Error open_error(const std::string& path, qapi::OptionsTree options, OpenFlags flags = {}) {
        auto blk = open_file_backend(path, flags, std::move(options));
        if (blk.ok()) {
            ADD_FAILURE() << "open unexpectedly succeeded";
            return Error{};
        }
        return blk.error();
    }
    Status create(const std::string& path, uint64_t size, qapi::OptionsTree options = {}) {
        const BlockDriver* file = find_block_driver("file");
        CreateContext ctx(*file, path, size, std::move(options));
        return run_sync(loop_, [&] { return file->co_create(ctx); });
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
    std::string path_;
};

TEST_F(FileDriverTest, RegisteredAsProtocols) {
    block_layer_init();
    const BlockDriver* file = find_block_driver("file");
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->kind, DriverKind::kProtocol);
    EXPECT_EQ(find_protocol_for_filename("file:/x/y.img"), file);
    ASSERT_NE(find_block_driver("host_device"), nullptr);
    EXPECT_NE(file->co_create, nullptr);
}

TEST_F(FileDriverTest, FilePrefixAndPlainOptions) {
    make_file(path_, 65536);
    // Without a driver the prefix picks the protocol and a format is probed
    // on top (raw here, as QEMU); with driver=file the node is the file.
    auto probed = BlockBackend::open("file:" + path_, {}, OpenFlags{});
    ASSERT_TRUE(probed.ok()) << probed.error().to_string();
    EXPECT_EQ((*probed)->root()->driver().name, "raw");
    probed->reset();
    qapi::OptionsTree as_protocol;
    as_protocol.set("driver", "file");
    auto blk = BlockBackend::open("file:" + path_, as_protocol, OpenFlags{});
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    ASSERT_NE(file_node(**blk), nullptr);
    EXPECT_EQ((*blk)->root()->filename(), path_);
    EXPECT_EQ((*blk)->length(), 65536u);
    blk->reset();
    // QEMU's other runtime options are accepted.
    auto blk2 = open_file_backend(path_, OpenFlags{},
                                  {{"aio", "threads"},
                                   {"aio-max-batch", "5"},
                                   {"drop-cache", "off"},
                                   {"x-check-cache-dropped", "on"},
                                   {"locking", "auto"}});
    EXPECT_TRUE(blk2.ok()) << blk2.error().to_string();
}

TEST_F(FileDriverTest, OpenErrorsUseQemuTexts) {
    make_file(path_, 65536);
    EXPECT_EQ(open_error(dir_.path("missing.img"), {}).message,
              "Could not open '" + dir_.path("missing.img") + "': No such file or directory");
    EXPECT_EQ(open_error(path_, {{"aio", "bogus"}}).message, "invalid parameter value: bogus");
    EXPECT_EQ(open_error(path_, {{"locking", "maybe"}}).message, "invalid parameter value: maybe");
    EXPECT_EQ(open_error(path_, {{"pr-manager", "x"}}).message,
              "No persistent reservation manager with id 'x'");
    EXPECT_EQ(open_error(path_, {{"aio", "native"}}).message,
              "aio=native was specified, but it requires cache.direct=on, which was not "
              "specified.");
    EXPECT_EQ(open_error(path_, {{"bogus", "1"}}).message,
              "Block protocol 'file' doesn't support the option 'bogus'");
    OpenFlags ro;
    ro.read_only = true;
    EXPECT_EQ(open_error(dir_.dir(), {}, ro).message,
              "'file' driver requires '" + dir_.dir() + "' to be a regular file");
    auto device = BlockBackend::open(path_, {{"driver", "host_device"}}, OpenFlags{});
    ASSERT_FALSE(device.ok());
    EXPECT_EQ(device.error().message, "'host_device' driver requires '" + path_ +
                                          "' to be either a character or block device");
}

TEST_F(FileDriverTest, AioFlagsComeFromTheBlockLayerUnlessGiven) {
    make_file(path_, 65536);
    OpenFlags flags;
    flags.cache_direct = true;
    flags.aio = AioMode::kNative;
    auto blk = open_file_backend(path_, flags);
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    EXPECT_EQ(file_node(**blk)->aio_mode(), AioMode::kNative);
    blk->reset();
    auto blk2 = open_file_backend(path_, flags, {{"aio", "threads"}});
    ASSERT_TRUE(blk2.ok());
    EXPECT_EQ(file_node(**blk2)->aio_mode(), AioMode::kThreads);
}

TEST_F(FileDriverTest, DirectIoAdvertisesProbedAlignment) {
    make_file(path_, 1 << 20);
    auto buffered = open_file_backend(path_, OpenFlags{});
    ASSERT_TRUE(buffered.ok());
    EXPECT_EQ((*buffered)->root()->limits().request_alignment, 1u);
    EXPECT_EQ((*buffered)->root()->limits().memory_alignment, 1u);
    buffered->reset();

    OpenFlags direct;
    direct.cache_direct = true;
    auto blk = open_file_backend(path_, direct);
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    const BlockLimits& limits = (*blk)->root()->limits();
    EXPECT_GE(limits.request_alignment, 512u);
    EXPECT_LE(limits.request_alignment, 4096u);
    EXPECT_EQ(limits.request_alignment & (limits.request_alignment - 1), 0u);
    EXPECT_GE(limits.memory_alignment, limits.request_alignment);
    // Reopening with cache.direct=off goes back to byte granularity.
    OpenFlags off = direct;
    off.cache_direct = false;
    Status s = run_sync(loop_, [&] { return (*blk)->root()->co_reopen(off); });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_EQ((*blk)->root()->limits().request_alignment, 1u);
}

TEST_F(FileDriverTest, DirectIoOnTmpfs) {
    TempDir shm("/dev/shm");
    ASSERT_TRUE(shm.ok());
    const std::string path = shm.path("direct.img");
    make_file(path, 1 << 20);
    OpenFlags direct;
    direct.cache_direct = true;
    auto blk = open_file_backend(path, direct);
    if (!blk.ok() && blk.error().message.find("O_DIRECT") != std::string::npos)
        GTEST_SKIP() << "tmpfs refuses O_DIRECT on this kernel";
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    auto data = pattern(5000, 4);
    ASSERT_TRUE((*blk)->pwrite(123, data.data(), data.size()).ok());
    EXPECT_EQ(read_file(path, 123, 5000), data);
}

TEST_F(FileDriverTest, BlockStatusOfASparseFile) {
    make_file(path_, 4 << 20);
    write_file(path_, 1 << 20, pattern(65536, 1));
    auto blk = open_file_backend(path_, OpenFlags{});
    ASSERT_TRUE(blk.ok());
    BlockNode* node = (*blk)->root();
    auto status = [&](uint64_t offset, uint64_t bytes, bool want_zero) {
        return run_sync(loop_, [&] { return node->co_block_status(offset, bytes, want_zero); });
    };
    auto hole = status(0, 4 << 20, true);
    ASSERT_TRUE(hole.ok());
    EXPECT_EQ(hole->flags & (kStatusZero | kStatusData), kStatusZero);
    EXPECT_EQ(hole->bytes, 1u << 20);
    EXPECT_TRUE(hole->flags & kStatusOffsetValid);
    EXPECT_TRUE(hole->flags & kStatusAllocated);
    EXPECT_EQ(hole->offset, 0u);
    EXPECT_EQ(hole->file, node);

    auto data = status(1 << 20, 3 << 20, true);
    ASSERT_TRUE(data.ok());
    EXPECT_EQ(data->flags & (kStatusZero | kStatusData), kStatusData);
    EXPECT_EQ(data->bytes, 65536u);
    EXPECT_EQ(data->offset, 1u << 20);

    auto tail = status((1 << 20) + 65536, (3 << 20) - 65536, true);
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(tail->flags & (kStatusZero | kStatusData), kStatusZero);
    EXPECT_EQ(tail->bytes, (3u << 20) - 65536);
    EXPECT_TRUE(tail->flags & kStatusEof);

    // Without want_zero everything is data, as QEMU answers.
    auto quick = status(0, 4 << 20, false);
    ASSERT_TRUE(quick.ok());
    EXPECT_EQ(quick->flags & (kStatusZero | kStatusData), kStatusData);
    EXPECT_EQ(quick->bytes, 4u << 20);
}

TEST_F(FileDriverTest, TruncateGrowsAndShrinks) {
    make_file(path_, 1 << 20);
    auto blk = open_file_backend(path_, OpenFlags{});
    ASSERT_TRUE(blk.ok());
    auto data = pattern(4096, 8);
    ASSERT_TRUE((*blk)->pwrite(0, data.data(), data.size()).ok());

    ASSERT_TRUE((*blk)->truncate(2 << 20, true, Prealloc::kOff).ok());
    EXPECT_EQ((*blk)->length(), 2u << 20);
    EXPECT_EQ(file_size(path_), 2u << 20);
    const uint64_t sparse = allocated_bytes(path_);

    ASSERT_TRUE((*blk)->truncate(3 << 20, true, Prealloc::kFalloc).ok());
    EXPECT_GE(allocated_bytes(path_), sparse + (1u << 20));
    ASSERT_TRUE((*blk)->truncate(4 << 20, true, Prealloc::kFull).ok());
    EXPECT_GE(allocated_bytes(path_), sparse + (2u << 20));
    EXPECT_EQ((*blk)->root()->allocated_size(), static_cast<int64_t>(allocated_bytes(path_)));
    std::vector<uint8_t> tail(4096, 0xff);
    ASSERT_TRUE((*blk)->pread((4 << 20) - 4096, tail.data(), tail.size()).ok());
    EXPECT_EQ(tail, std::vector<uint8_t>(4096, 0));

    Status s = (*blk)->truncate(1 << 20, true, Prealloc::kFalloc, true);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Cannot use preallocation for shrinking files");
    s = (*blk)->truncate(8 << 20, true, Prealloc::kMetadata);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Unsupported preallocation mode: metadata");

    ASSERT_TRUE((*blk)->truncate(8192, true, Prealloc::kOff, true).ok());
    EXPECT_EQ((*blk)->length(), 8192u);
    EXPECT_EQ(file_size(path_), 8192u);
    std::vector<uint8_t> head(4096);
    ASSERT_TRUE((*blk)->pread(0, head.data(), head.size()).ok());
    EXPECT_EQ(head, data);
    EXPECT_TRUE((*blk)->root()->info_specific().is_null());
}

TEST_F(FileDriverTest, CreateOptionsMatchQemu) {
    const BlockDriver* file = find_block_driver("file");
    ASSERT_NE(file, nullptr);
    ASSERT_NE(file->create_options, nullptr);
    EXPECT_EQ(qapi::format_option_lines({file->create_options}),
              "  extent_size_hint=<size> - Extent size hint for the image file, 0 to disable\n"
              "  nocow=<bool (on/off)>  - Turn off copy-on-write (valid only on btrfs)\n"
              "  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)\n"
              "  size=<size>            - Virtual disk size\n");
    std::vector<std::string> order;
    for (const auto& field : file->create_options->fields)
        order.push_back(field.name);
    EXPECT_EQ(order,
              std::vector<std::string>({"size", "nocow", "preallocation", "extent_size_hint"}));
}

TEST_F(FileDriverTest, CreateSizesAndPreallocates) {
    ASSERT_TRUE(create(path_, 1000).ok());
    EXPECT_EQ(file_size(path_), 1024u);  // whole sectors, as QEMU
    ASSERT_TRUE(create("file:" + path_, 1 << 20, {{"preallocation", "full"}}).ok());
    EXPECT_EQ(file_size(path_), 1u << 20);
    EXPECT_GE(allocated_bytes(path_), 1u << 20);
    const std::string falloc = dir_.path("falloc.img");
    ASSERT_TRUE(create(falloc, 1 << 20, {{"preallocation", "falloc"}, {"nocow", "on"}}).ok());
    EXPECT_GE(allocated_bytes(falloc), 1u << 20);
    // Recreating an image empties it.
    write_file(falloc, 4096, pattern(4096, 5));
    ASSERT_TRUE(create(falloc, 65536).ok());
    EXPECT_EQ(file_size(falloc), 65536u);
    EXPECT_EQ(read_file(falloc, 4096, 4096), std::vector<uint8_t>(4096, 0));
}

TEST_F(FileDriverTest, CreateErrorsUseQemuTexts) {
    Status s = create(path_, 1 << 20, {{"preallocation", "metadata"}});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Unsupported preallocation mode: metadata");
    s = create(path_, 1 << 20, {{"preallocation", "bogus"}});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "invalid parameter value: bogus");
    s = create(path_, 1 << 20, {{"nocow", "maybe"}});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Parameter 'nocow' expects 'on' or 'off'");
    s = create("/nonexistent-dir/x.img", 1 << 20);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message,
              "Could not create '/nonexistent-dir/x.img': No such file or directory");
}

TEST_F(FileDriverTest, CreateRefusesAnImageInUseAndLeavesItAlone) {
    make_file(path_, 1 << 20);
    write_file(path_, 0, pattern(4096, 6));
    auto blk = open_file_backend(path_, OpenFlags{});
    ASSERT_TRUE(blk.ok());
    Status s = create(path_, 65536);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message,
              "Failed to get \"write\" lock\nIs another process using the image [" + path_ + "]?");
    EXPECT_EQ(file_size(path_), 1u << 20);
    EXPECT_EQ(read_file(path_, 0, 4096), pattern(4096, 6));
}

}  // namespace
}  // namespace coblock
