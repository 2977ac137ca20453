// The qcow (v1) driver on in-memory images: open checks, reads, writes,
// allocation layout (compared with what QEMU produces), compressed clusters,
// backing files, block status, the L2 cache and concurrent requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "block/create.h"
#include "block/io.h"
#include "coroutine/run_sync.h"
#include "drivers/qcow/qcow_compress.h"
#include "drivers/qcow/qcow_node.h"
#include "qapi/help.h"
#include "qcow_test_util.h"

namespace coblock::qcow {
namespace {

using namespace coblock::qcow::testing;

constexpr uint64_t kMiB = 1 << 20;

std::vector<uint8_t> read(BlockBackend& blk, uint64_t offset, size_t n) {
    std::vector<uint8_t> out(n, 0xee);
    Status s = blk.pread(offset, out.data(), n);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
}

void write(BlockBackend& blk, uint64_t offset, const std::vector<uint8_t>& data,
           uint32_t flags = 0) {
    Status s = blk.pwrite(offset, data.data(), data.size(), flags);
    ASSERT_TRUE(s.ok()) << s.error().message;
}

QcowNode* qcow_node(BlockBackend& blk) {
    return dynamic_cast<QcowNode*>(blk.root());
}

TEST(QcowOpen, RegisteredWithProbeAndBacking) {
    block_layer_init();
    const BlockDriver* d = find_block_driver("qcow");
    ASSERT_NE(d, nullptr);
    EXPECT_TRUE(d->supports_backing);
    auto image = new_image(kMiB);
    EXPECT_EQ(probe_format(image, "x")->name, "qcow");
    // A qcow2 header (version 2) is not ours.
    image[7] = std::byte{2};
    EXPECT_NE(probe_format(image, "x")->name, "qcow");
}

TEST(QcowOpen, EmptyImageReadsZeros) {
    MemImage mem = memory_image(new_image(100 * kMiB));
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->length(), 100 * kMiB);
    EXPECT_EQ(read(**blk, 0, 65536), filled(65536, 0));
    EXPECT_EQ(read(**blk, 100 * kMiB - 4096, 4096), filled(4096, 0));
    EXPECT_EQ(qcow_node(**blk)->geometry().cluster_bits, 12u);
}

TEST(QcowOpen, VirtualSizeRoundsDownToSectors) {
    auto bytes = custom_image(1000, 12, 9);
    MemImage mem = memory_image(bytes);
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->length(), 512u);
}

struct BadHeaderCase {
    const char* what;
    void (*mutate)(Header&);
    const char* message;
};

TEST(QcowOpen, RefusesBadHeadersWithQemuMessagesAndWritesNothing) {
    const BadHeaderCase cases[] = {
        {"magic", [](Header& h) { h.magic = 0x12345678; }, "Image not in qcow format"},
        {"version", [](Header& h) { h.version = 2; }, "qcow (v1) does not support qcow version 2"},
        {"size", [](Header& h) { h.size = 1; },
         "Image size is too small (must be at least 2 bytes)"},
        {"cluster_bits low", [](Header& h) { h.cluster_bits = 8; },
         "Cluster size must be between 512 and 64k"},
        {"cluster_bits high", [](Header& h) { h.cluster_bits = 17; },
         "Cluster size must be between 512 and 64k"},
        {"l2_bits low", [](Header& h) { h.l2_bits = 5; },
         "L2 table size must be between 512 and 64k"},
        {"l2_bits high", [](Header& h) { h.l2_bits = 14; },
         "L2 table size must be between 512 and 64k"},
        {"crypt_method aes", [](Header& h) { h.crypt_method = 1; },
         "qcow: aes encryption (crypt_method 1) is not supported"},
        {"crypt_method 2", [](Header& h) { h.crypt_method = 2; },
         "invalid encryption method in qcow header"},
        {"size overflow", [](Header& h) { h.size = ~uint64_t{0} - 100; }, "Image too large"},
        {"l1 too large", [](Header& h) { h.size = uint64_t{1} << 62; }, "Image too large"},
        {"backing name too long",
         [](Header& h) {
             h.backing_file_offset = 48;
             h.backing_file_size = 1024;
         },
         "Backing file name too long"},
        {"backing name beyond file",
         [](Header& h) {
             h.backing_file_offset = 4096;
             h.backing_file_size = 10;
         },
         "qcow: backing file name at backing_file_offset 0x1000 length 10 ends beyond the file "
         "(560 bytes)"},
        {"l1 beyond file", [](Header& h) { h.l1_table_offset = 0x10000; },
         "qcow: l1_table_offset 0x10000 with 50 entries ends beyond the file (560 bytes)"},
        {"l1 beyond limit", [](Header& h) { h.l1_table_offset = ~uint64_t{0} - 8; },
         "qcow: l1 table"},
    };
    for (const BadHeaderCase& c : cases) {
        SCOPED_TRACE(c.what);
        auto bytes = new_image(100 * kMiB);
        auto header = decode_header(bytes);
        ASSERT_TRUE(header.ok());
        c.mutate(*header);
        ASSERT_TRUE(encode_header(*header, bytes).ok());
        MemImage mem = memory_image(bytes);
        auto blk = open_qcow(mem.mem);
        ASSERT_FALSE(blk.ok());
        EXPECT_EQ(blk.error().message.rfind(c.message, 0), 0u) << blk.error().message;
        EXPECT_EQ(mem.mem->writes(), 0u);
        EXPECT_EQ(mem.mem->bytes(), bytes);
    }
}

TEST(QcowOpen, AesImageOpensForMetadataOnly) {
    auto bytes = new_image(kMiB);
    auto header = decode_header(bytes);
    ASSERT_TRUE(header.ok());
    header->crypt_method = kCryptAes;
    ASSERT_TRUE(encode_header(*header, bytes).ok());
    MemImage mem = memory_image(bytes);
    auto refused = open_qcow(mem.mem);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, ErrorKind::kUnsupported);
    // qemu-img info opens it without a key; so do we, but serve no data.
    auto info = open_qcow(mem.mem, nullptr, /*read_only=*/true, {}, /*no_io=*/true);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)->length(), kMiB);
    std::vector<uint8_t> buf(512);
    Status s = (*info)->pread(0, buf.data(), buf.size());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "qcow: aes encryption (crypt_method 1) is not supported");
}

TEST(QcowOpen, Qcow2HeaderGetsQemusHint) {
    auto bytes = new_image(kMiB);
    bytes[7] = std::byte{3};
    MemImage mem = memory_image(bytes);
    auto blk = open_qcow(mem.mem);
    ASSERT_FALSE(blk.ok());
    EXPECT_EQ(blk.error().message,
              "qcow (v1) does not support qcow version 3\nTry the 'qcow2' driver instead.");
    EXPECT_EQ(blk.error().as_errno(), ENOTSUP);
}

TEST(QcowOpen, ShortFileIsNotQcow) {
    MemImage mem = memory_image(std::vector<std::byte>(20));
    auto blk = open_qcow(mem.mem);
    ASSERT_FALSE(blk.ok());
    EXPECT_EQ(blk.error().message, "Image not in qcow format");
}

TEST(QcowWrite, LayoutMatchesQemu) {
    // specs/qcow-v1.md §9: qemu-io "write -P 0xab 4096 4096" and
    // "write -P 0xcd 2M 512" on a fresh 100 MiB image.
    MemImage mem = memory_image(new_image(100 * kMiB));
    {
        auto blk = open_qcow(mem.mem);
        ASSERT_TRUE(blk.ok()) << blk.error().message;
        write(**blk, 4096, filled(4096, 0xab));
        write(**blk, 2 * kMiB, filled(512, 0xcd));
        EXPECT_EQ(read(**blk, 4096, 4096), filled(4096, 0xab));
        EXPECT_EQ(read(**blk, 2 * kMiB, 4096), [] {
            auto v = filled(4096, 0);
            std::fill(v.begin(), v.begin() + 512, 0xcd);
            return v;
        }());
    }
    const auto& b = mem.mem->bytes();
    EXPECT_EQ(be64_at(b, 48), 0x1000u);          // L1[0]
    EXPECT_EQ(be64_at(b, 56), 0x3000u);          // L1[1]
    EXPECT_EQ(be64_at(b, 0x1000 + 8), 0x2000u);  // L2[0][1]
    EXPECT_EQ(be64_at(b, 0x3000), 0x4000u);      // L2[1][0]
    EXPECT_EQ(b.size(), 0x5000u);
    EXPECT_EQ(static_cast<uint8_t>(b[0x2000]), 0xab);
    EXPECT_EQ(static_cast<uint8_t>(b[0x4000]), 0xcd);
    EXPECT_EQ(static_cast<uint8_t>(b[0x4200]), 0x00);
}

TEST(QcowWrite, UnalignedWritesAndReopen) {
    MemImage mem = memory_image(new_image(8 * kMiB));
    std::vector<uint8_t> shadow(8 * kMiB, 0);
    auto apply = [&](BlockBackend& blk, uint64_t off, std::vector<uint8_t> data) {
        write(blk, off, data);
        std::copy(data.begin(), data.end(), shadow.begin() + off);
    };
    {
        auto blk = open_qcow(mem.mem);
        ASSERT_TRUE(blk.ok()) << blk.error().message;
        apply(**blk, 3000, pattern(1000, 1));
        apply(**blk, 4095, pattern(2, 2));
        apply(**blk, 2 * kMiB - 100, pattern(9000, 3));
        apply(**blk, 7 * kMiB + 1, pattern(65536, 4));
        apply(**blk, 3001, pattern(10, 5));
        EXPECT_EQ(read(**blk, 0, shadow.size()), shadow);
        ASSERT_TRUE((*blk)->flush().ok());
    }
    auto blk = open_qcow(mem.mem, nullptr, /*read_only=*/true);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ(read(**blk, 0, shadow.size()), shadow);
    EXPECT_FALSE((*blk)->pwrite(0, shadow.data(), 512).ok());
}

TEST(QcowWrite, ZeroWritesFallBackToWrittenZeros) {
    MemImage mem = memory_image(new_image(kMiB));
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    write(**blk, 0, filled(8192, 0x11));
    ASSERT_TRUE((*blk)->pwrite_zeroes(1024, 4096).ok());
    auto expect = filled(8192, 0x11);
    std::fill(expect.begin() + 1024, expect.begin() + 5120, 0);
    EXPECT_EQ(read(**blk, 0, 8192), expect);
    // Zeros into an unallocated cluster allocate it (qcow has no zero flag).
    ASSERT_TRUE((*blk)->pwrite_zeroes(65536, 4096).ok());
    bool allocated = false;
    auto n = run_sync([&] { return co_is_allocated((*blk)->root(), 65536, 4096, &allocated); });
    ASSERT_TRUE(n.ok());
    EXPECT_TRUE(allocated);
}

TEST(QcowWrite, TruncateIsUnsupported) {
    MemImage mem = memory_image(new_image(kMiB));
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    Status s = (*blk)->truncate(2 * kMiB, false, Prealloc::kOff);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ((*blk)->length(), kMiB);
}

TEST(QcowWrite, ManyL2TablesThroughTheCache) {
    // 40 L2 tables (each covers 2 MiB): more than the 16-entry cache.
    MemImage mem = memory_image(new_image(80 * kMiB));
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    for (uint32_t i = 0; i < 40; ++i)
        write(**blk, i * 2 * kMiB + 512 * i, pattern(1000, i));
    for (uint32_t i = 0; i < 40; ++i)
        EXPECT_EQ(read(**blk, i * 2 * kMiB + 512 * i, 1000), pattern(1000, i)) << i;
    EXPECT_GT(qcow_node(**blk)->l2_cache().misses(), 16u);
}

TEST(QcowCompressed, WriteReadAndPartialOverwrite) {
    MemImage mem = memory_image(new_image(kMiB));
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    auto data = filled(4096, 0x5a);
    std::fill(data.begin(), data.begin() + 100, 0x01);
    write(**blk, 8192, data, kReqWriteCompressed);
    EXPECT_EQ(read(**blk, 8192, 4096), data);
    // The entry: bit 63, a 512-aligned offset at the old end of file, the
    // exact compressed length.
    const auto& b = mem.mem->bytes();
    const uint64_t l2 = be64_at(b, 48);
    ASSERT_EQ(l2, 0x1000u);
    const uint64_t entry = be64_at(b, l2 + 2 * 8);
    ASSERT_TRUE(entry & kCompressedFlag);
    const uint64_t coffset = entry & ((uint64_t{1} << 51) - 1);
    const uint64_t csize = (entry >> 51) & 0xfff;
    EXPECT_EQ(coffset, 0x2000u);
    EXPECT_GT(csize, 0u);
    EXPECT_LT(csize, 100u);
    EXPECT_EQ(b.size(), coffset + csize);

    // A second compressed cluster starts on the next 512-byte boundary.
    write(**blk, 12288, filled(4096, 0x77), kReqWriteCompressed);
    const uint64_t entry2 = be64_at(mem.mem->bytes(), l2 + 3 * 8);
    EXPECT_EQ(entry2 & ((uint64_t{1} << 51) - 1), 0x2200u);

    // Partial overwrite: decompressed into a new cluster, the rest kept.
    write(**blk, 8192 + 1024, filled(512, 0x99));
    std::fill(data.begin() + 1024, data.begin() + 1536, 0x99);
    EXPECT_EQ(read(**blk, 8192, 4096), data);
    const uint64_t entry3 = be64_at(mem.mem->bytes(), l2 + 2 * 8);
    EXPECT_FALSE(entry3 & kCompressedFlag);
    EXPECT_EQ(entry3 % 4096, 0u);
    EXPECT_EQ(read(**blk, 12288, 4096), filled(4096, 0x77));
}

TEST(QcowCompressed, RulesAndFallback) {
    MemImage mem = memory_image(new_image(kMiB + 1024));  // last cluster is partial
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    // Not a whole cluster.
    Status s = (*blk)->pwrite(0, filled(2048, 1).data(), 2048, kReqWriteCompressed);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().as_errno(), EINVAL);
    // Into an allocated cluster: refused (QEMU would corrupt the image).
    write(**blk, 4096, filled(4096, 2));
    s = (*blk)->pwrite(4096, filled(4096, 3).data(), 4096, kReqWriteCompressed);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(read(**blk, 4096, 4096), filled(4096, 2));
    // The partial last cluster is zero-padded and compressed.
    write(**blk, kMiB, filled(1024, 4), kReqWriteCompressed);
    EXPECT_EQ(read(**blk, kMiB, 1024), filled(1024, 4));
    // Incompressible data is written as a normal cluster.
    auto noise = pattern(4096, 77);
    write(**blk, 16384, noise, kReqWriteCompressed);
    EXPECT_EQ(read(**blk, 16384, 4096), noise);
    const uint64_t entry = be64_at(mem.mem->bytes(), 0x1000 + 4 * 8);
    EXPECT_FALSE(entry & kCompressedFlag);
    EXPECT_NE(entry, 0u);
}

TEST(QcowCompressed, CorruptStreamIsAnIoErrorNotACrash) {
    MemImage mem = memory_image(new_image(kMiB));
    {
        auto blk = open_qcow(mem.mem);
        ASSERT_TRUE(blk.ok());
        write(**blk, 0, filled(4096, 0x42), kReqWriteCompressed);
    }
    auto& b = mem.mem->bytes();
    for (uint64_t i = 0x2000; i < b.size(); ++i)
        b[i] = std::byte{0xff};
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    std::vector<uint8_t> out(4096);
    Status s = (*blk)->pread(0, out.data(), out.size());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().as_errno(), EIO);
}

TEST(QcowCompressed, RoundTripHelpers) {
    auto data = pattern(65536, 3);
    for (size_t i = 0; i < data.size(); i += 3)
        data[i] = 0;
    std::vector<std::byte> in(data.size());
    std::memcpy(in.data(), data.data(), data.size());
    std::vector<std::byte> zeros(65536);
    auto c = compress_cluster(zeros);
    ASSERT_TRUE(c.has_value());
    std::vector<std::byte> out(65536, std::byte{1});
    ASSERT_TRUE(decompress_cluster(*c, out).ok());
    EXPECT_EQ(out, zeros);
    // A stream that inflates to less than a cluster is refused.
    std::vector<std::byte> small(4096);
    auto c2 = compress_cluster(small);
    ASSERT_TRUE(c2.has_value());
    EXPECT_FALSE(decompress_cluster(*c2, out).ok());
}

TEST(QcowBacking, ReadsFallThroughAndPartialWritesCopyOnWrite) {
    // 4 KiB clusters with a backing file: QEMU would lose backing data in
    // partially written clusters; we copy it.
    std::vector<std::byte> base_bytes(kMiB, std::byte{0xbb});
    MemImage base = memory_image(base_bytes);
    MemImage top = memory_image(custom_image(2 * kMiB, 12, 9, "base.img"));
    auto blk = open_qcow(top.mem, base.mem);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    ASSERT_NE((*blk)->root()->backing(), nullptr);
    EXPECT_EQ((*blk)->root()->backing_filename(), "base.img");
    EXPECT_EQ(read(**blk, 0, 8192), filled(8192, 0xbb));
    // Beyond the backing file's end: zeros.
    EXPECT_EQ(read(**blk, kMiB, 4096), filled(4096, 0));
    write(**blk, 4096, filled(512, 0x11));
    auto expect = filled(4096, 0xbb);
    std::fill(expect.begin(), expect.begin() + 512, 0x11);
    EXPECT_EQ(read(**blk, 4096, 4096), expect);
    // Straddling the backing file's end.
    write(**blk, kMiB - 4096 + 512, filled(512, 0x22));
    expect = filled(4096, 0xbb);
    std::fill(expect.begin() + 512, expect.begin() + 1024, 0x22);
    EXPECT_EQ(read(**blk, kMiB - 4096, 4096), expect);
    EXPECT_EQ(base.mem->writes(), 0u);
}

TEST(QcowBacking, BackingNullAndNoBackingFlag) {
    MemImage top = memory_image(custom_image(kMiB, 12, 9, "does-not-exist.img"));
    // The name cannot be opened...
    auto fails = open_qcow(top.mem);
    ASSERT_FALSE(fails.ok());
    // ...unless backing is switched off.
    qapi::OptionsTree options;
    options.set("backing", "");
    auto blk = open_qcow(top.mem, nullptr, false, std::move(options));
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->root()->backing(), nullptr);
    EXPECT_EQ((*blk)->root()->backing_filename(), "does-not-exist.img");
    EXPECT_EQ(read(**blk, 0, 4096), filled(4096, 0));
}

TEST(QcowStatus, AllocatedCompressedAndUnallocated) {
    MemImage mem = memory_image(new_image(8 * kMiB));
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok());
    write(**blk, 0, filled(8192, 1));  // clusters 0,1 contiguous on the host
    write(**blk, 16384, filled(4096, 0), kReqWriteCompressed);
    BlockNode* root = (*blk)->root();
    auto st = run_sync([&] { return co_node_block_status(root, 0, 8 * kMiB, true); });
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(st->bytes, 8192u);
    EXPECT_TRUE(st->flags & kStatusData);
    EXPECT_TRUE(st->flags & kStatusOffsetValid);
    EXPECT_EQ(st->offset, 0x2000u);
    st = run_sync([&] { return co_node_block_status(root, 8192, 8 * kMiB - 8192, true); });
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->bytes, 8192u);
    EXPECT_FALSE(st->flags & (kStatusData | kStatusAllocated));
    EXPECT_TRUE(st->flags & kStatusZero);  // no backing: reads as zeros
    st = run_sync([&] { return co_node_block_status(root, 16384, 4096, true); });
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(st->flags & kStatusData);
    EXPECT_FALSE(st->flags & kStatusOffsetValid);
    // A whole unallocated L2 range is one run.
    st = run_sync([&] { return co_node_block_status(root, 2 * kMiB, 6 * kMiB, true); });
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->bytes, 2 * kMiB);
}

TEST(QcowConcurrency, ParallelWritesToSharedAndSeparateClusters) {
    MemoryNodeOptions options;
    options.async = true;
    uint32_t turn = 0;
    options.complete_now = [&turn] { return (++turn % 3) == 0; };
    MemImage mem = memory_image(new_image(4 * kMiB), options);
    auto blk = open_qcow(mem.mem);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    std::vector<uint8_t> shadow(4 * kMiB, 0);
    std::vector<std::vector<uint8_t>> buffers;
    std::vector<IoVector> iovs;
    buffers.reserve(64);
    iovs.reserve(64);
    int done = 0;
    int failed = 0;
    struct Ctx {
        int* done;
        int* failed;
    } ctx{&done, &failed};
    for (uint32_t i = 0; i < 64; ++i) {
        // Non-overlapping 512-byte slots, several per cluster, spread over
        // two L2 tables so allocations race.
        const uint64_t off = (i % 2) * 2 * kMiB + (i / 2) * 1536;
        buffers.push_back(pattern(512, i + 100));
        std::copy(buffers.back().begin(), buffers.back().end(), shadow.begin() + off);
        iovs.emplace_back(buffers.back().data(), 512);
        (*blk)->aio_pwritev(
            off, &iovs.back(),
            [](void* opaque, int ret) {
                auto* c = static_cast<Ctx*>(opaque);
                ++*c->done;
                if (ret != 0) ++*c->failed;
            },
            &ctx);
    }
    (*blk)->drain();
    EXPECT_EQ(done, 64);
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(read(**blk, 0, shadow.size()), shadow);
    // And from a fresh open: the metadata reached the file.
    blk->reset();
    auto again = open_qcow(mem.mem, nullptr, true);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(read(**again, 0, shadow.size()), shadow);
}

TEST(QcowCreate, SchemaAndHelpLikeQemuImg) {
    block_layer_init();
    const BlockDriver* d = find_block_driver("qcow");
    ASSERT_NE(d->create_options, nullptr);
    EXPECT_TRUE(qapi::check_schema(*d->create_options).ok());
    EXPECT_EQ(qapi::format_create_help("qcow", *d->create_options, nullptr),
              "Supported qcow options:\n"
              "  backing_file=<str>     - File name of a base image\n"
              "  backing_fmt=<str>      - Format of the backing image\n"
              "  encrypt.format=<str>   - Encrypt the image, format choices: 'aes'\n"
              "  encrypt.key-secret=<str> - ID of the secret that provides the AES encryption "
              "key\n"
              "  encryption=<bool (on/off)> - Encrypt the image with format 'aes'. (Deprecated in "
              "favor of encrypt.format=aes)\n"
              "  size=<size>            - Virtual disk size\n"
              "\n"
              "The protocol level may support further options.\n"
              "Specify the target filename to include those options.\n");
}

}  // namespace
}  // namespace coblock::qcow

namespace coblock::qcow {
namespace {

using namespace coblock::qcow::testing;

// Malformed tables inside an image (the header cases are in
// RefusesBadHeadersWithQemuMessagesAndWritesNothing): an L2 table or a
// compressed cluster past the end of the file, a truncated file. Opened
// read-only and read-write, reads and a write over the damage fail with an
// error naming the structure and offset, and not a byte changes.
TEST(QcowMalformed, TablesOutsideTheFileNamedAndNothingWritten) {
    // 4 KiB clusters, 512-entry L2 tables; data in cluster 0, compressed 4.
    MemImage made = memory_image(custom_image(kMiB, 12, 9));
    {
        auto blk = open_qcow(made.mem);
        ASSERT_TRUE(blk.ok());
        write(**blk, 0, filled(4096, 0x11));
        write(**blk, 4 * 4096, filled(4096, 0x22), kReqWriteCompressed);
    }
    const std::vector<std::byte> base = made.mem->bytes();
    const uint64_t l1 = be64_at(base, 40);
    const uint64_t l2 = be64_at(base, l1);
    ASSERT_NE(be64_at(base, l2 + 4 * 8) >> 63, 0u) << "cluster 4 is compressed";
    auto put64 = [](std::vector<std::byte>& b, uint64_t off, uint64_t v) {
        for (int i = 0; i < 8; ++i)
            b[off + i] = std::byte(static_cast<uint8_t>(v >> (56 - 8 * i)));
    };
    struct Case {
        const char* what;
        std::function<void(std::vector<std::byte>&)> mutate;
        uint64_t write_at;
        std::string message;
    };
    const Case cases[] = {
        {"L2 table past the end", [&](std::vector<std::byte>& b) { put64(b, l1, 0x40000000); }, 100,
         "qcow: L2 table at 0x40000000 starts beyond the end of the file"},
        {"compressed cluster past the end",
         [&](std::vector<std::byte>& b) {
             const uint64_t e = be64_at(b, l2 + 4 * 8);
             const uint64_t offset_mask = (uint64_t{1} << (63 - 12)) - 1;
             put64(b, l2 + 4 * 8, (e & ~offset_mask) | 0x40000000);
         },
         4 * 4096 + 10, "qcow: compressed cluster at host offset 0x40000000 starts beyond"},
        // QEMU reads the missing header bytes as zeros and says the same.
        {"truncated header", [](std::vector<std::byte>& b) { b.resize(20); }, 0,
         "Image size is too small (must be at least 2 bytes)"},
    };
    for (const Case& c : cases) {
        for (bool read_only : {true, false}) {
            SCOPED_TRACE(std::string(c.what) + (read_only ? " read-only" : " read-write"));
            std::vector<std::byte> bytes = base;
            c.mutate(bytes);
            MemImage mem = memory_image(bytes);
            auto blk = open_qcow(mem.mem, nullptr, read_only);
            std::string error;
            if (!blk.ok()) {
                error = blk.error().message;
            } else {
                std::vector<uint8_t> all(kMiB);
                Status st = (*blk)->pread(0, all.data(), all.size());
                if (!st.ok()) error = st.error().message;
                if (!read_only) {
                    std::vector<uint8_t> data(100, 0x33);
                    Status w = (*blk)->pwrite(c.write_at, data.data(), data.size());
                    EXPECT_FALSE(w.ok());
                    (void)(*blk)->flush();
                }
            }
            EXPECT_EQ(error.rfind(c.message, 0), 0u) << "error: \"" << error << "\"";
            EXPECT_TRUE(mem.mem->bytes() == bytes) << "the image changed";
        }
    }
}

}  // namespace
}  // namespace coblock::qcow
