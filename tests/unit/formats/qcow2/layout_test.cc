// Tests of the initial qcow2 layout builder: QEMU's offsets and sizes, option
// rules, multi-block refcount structures, and (when qemu-img is installed)
// byte-identical output to `qemu-img create` and a clean `qemu-img check`.
#include "formats/qcow2/layout.h"

#include "formats/qcow2/refcount.h"
#include "tests/unit/formats/qcow2/qemu_tools.h"
#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

CreateOptions options_of_size(uint64_t size) {
    CreateOptions o;
    o.size = size;
    return o;
}

// The image the writes produce on an empty file.
std::vector<std::byte> assemble(const InitialLayout& layout) {
    std::vector<std::byte> image(layout.file_size);
    for (const LayoutWrite& w : layout.writes) {
        std::copy(w.bytes.begin(), w.bytes.end(), image.begin() + w.offset);
    }
    return image;
}

// Checks the structural invariants every layout must satisfy.
void expect_consistent(const InitialLayout& layout) {
    const std::vector<std::byte> image = assemble(layout);
    auto parsed =
        parse_image_header(ByteSpan(image).first(uint64_t{1} << layout.header.header.cluster_bits));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, layout.header);
    const Header& h = layout.header.header;
    const Geometry g = header_geometry(h);
    // Writes ascend without overlapping.
    for (size_t i = 1; i < layout.writes.size(); ++i) {
        EXPECT_GE(layout.writes[i].offset,
                  layout.writes[i - 1].offset + layout.writes[i - 1].bytes.size());
    }
    // Every cluster up to the end of the file has refcount 1, the rest 0.
    auto table = decode_be64_table(
        ByteSpan(image).subspan(layout.refcount_table.offset, layout.refcount_table.length),
        layout.refcount_table.length / 8, "refcount table");
    ASSERT_THAT(table, IsOk());
    const uint64_t used_clusters = div_round_up(layout.file_size, g.cluster_size());
    const uint64_t blocks = layout.refcount_blocks.length / g.cluster_size();
    for (uint64_t cluster = 0; cluster < blocks * g.refcount_block_entries(); ++cluster) {
        const uint64_t block_offset = (*table)[cluster / g.refcount_block_entries()];
        ASSERT_NE(block_offset, 0u);
        const ByteSpan block = ByteSpan(image).subspan(block_offset, g.cluster_size());
        ASSERT_EQ(*get_refcount(block, cluster % g.refcount_block_entries(), h.refcount_order),
                  cluster < used_clusters ? 1u : 0u)
            << "cluster " << cluster;
    }
    for (uint64_t i = blocks; i < table->size(); ++i)
        EXPECT_EQ((*table)[i], 0u);
}

TEST(Qcow2Layout, MatchesQemuDefaults) {
    auto layout = build_initial_layout(options_of_size(1ull << 30));
    ASSERT_THAT(layout, IsOk());
    const Header& h = layout->header.header;
    EXPECT_EQ(h.version, 3u);
    EXPECT_EQ(h.header_length, 112u);
    EXPECT_EQ(h.refcount_table_offset, 0x10000u);
    EXPECT_EQ(h.refcount_table_clusters, 1u);
    EXPECT_EQ(h.l1_table_offset, 0x30000u);
    EXPECT_EQ(h.l1_size, 2u);
    EXPECT_EQ(layout->refcount_blocks, (Extent{0x20000, 0x10000}));
    EXPECT_EQ(layout->file_size, 196624u);
    EXPECT_EQ(layout->header.extensions.feature_table, qemu_feature_table());
    const std::vector<std::byte> image = assemble(*layout);
    EXPECT_EQ(load_be<uint32_t>(image.data() + 112), kExtFeatureTable);
    EXPECT_EQ(load_be<uint32_t>(image.data() + 116), 384u);
    EXPECT_EQ(load_be<uint64_t>(image.data() + 0x1f8), 0u);  // end marker
    EXPECT_EQ(load_be<uint64_t>(image.data() + 0x10000), 0x20000u);
    EXPECT_EQ(load_be<uint64_t>(image.data() + 0x20000), 0x0001000100010001u);
    expect_consistent(*layout);
}

TEST(Qcow2Layout, ZeroSizeAndVersion2AndBacking) {
    auto zero = build_initial_layout(options_of_size(0));
    ASSERT_THAT(zero, IsOk());
    EXPECT_EQ(zero->header.header.l1_size, 0u);
    EXPECT_EQ(zero->header.header.l1_table_offset, 0u);
    EXPECT_EQ(zero->file_size, 196608u);
    expect_consistent(*zero);

    CreateOptions v2 = options_of_size(100 << 20);
    v2.version = 2;
    auto old = build_initial_layout(v2);
    ASSERT_THAT(old, IsOk());
    EXPECT_EQ(old->header.header.header_length, 72u);
    EXPECT_EQ(old->header.extensions, HeaderExtensions{});
    EXPECT_EQ(old->file_size, 196616u);
    expect_consistent(*old);

    CreateOptions backing = options_of_size(1ull << 30);
    backing.backing_file = "a.qcow2";
    backing.backing_format = "qcow2";
    auto b = build_initial_layout(backing);
    ASSERT_THAT(b, IsOk());
    EXPECT_EQ(b->header.header.backing_file_offset, 0x210u);
    EXPECT_EQ(b->header.header.backing_file_size, 7u);
    EXPECT_EQ(b->header.backing_file, "a.qcow2");
    expect_consistent(*b);
}

TEST(Qcow2Layout, FeatureBits) {
    CreateOptions o = options_of_size(1ull << 30);
    o.extended_l2 = true;
    o.lazy_refcounts = true;
    o.compression_type = kCompressionZstd;
    o.data_file = "data.raw";
    o.data_file_raw = true;
    o.refcount_order = 6;
    auto layout = build_initial_layout(o);
    ASSERT_THAT(layout, IsOk());
    const Header& h = layout->header.header;
    EXPECT_EQ(h.incompatible_features,
              kIncompatDataFile | kIncompatCompression | kIncompatExtendedL2);
    EXPECT_EQ(h.compatible_features, kCompatLazyRefcounts);
    EXPECT_EQ(h.autoclear_features, kAutoclearDataFileRaw);
    EXPECT_EQ(h.compression_type, kCompressionZstd);
    EXPECT_EQ(h.refcount_order, 6u);
    EXPECT_EQ(h.l1_size, 4u);  // extended entries halve an L2 table's reach
    EXPECT_EQ(layout->header.extensions.data_file, "data.raw");
    expect_consistent(*layout);
}

TEST(Qcow2Layout, ManyRefcountBlocksAndLargeL1) {
    // 16 GiB at 512-byte clusters: a 4 MiB L1 (8192 clusters). With 64-bit
    // refcounts a block covers only 64 clusters, so the table spans clusters.
    CreateOptions o = options_of_size(16ull << 30);
    o.cluster_bits = 9;
    o.refcount_order = 6;
    auto layout = build_initial_layout(o);
    ASSERT_THAT(layout, IsOk());
    EXPECT_EQ(layout->header.header.l1_size, 524288u);
    EXPECT_GT(layout->refcount_blocks.length / 512, 128u);
    EXPECT_GT(layout->header.header.refcount_table_clusters, 1u);
    expect_consistent(*layout);

    o.refcount_order = 0;  // 1-bit: 4096 clusters per block
    layout = build_initial_layout(o);
    ASSERT_THAT(layout, IsOk());
    EXPECT_EQ(layout->refcount_blocks.length, 3u * 512);
    expect_consistent(*layout);

    // The maximum size for 512-byte clusters works; one sector more does not.
    o.size = 128ull << 30;
    EXPECT_THAT(build_initial_layout(o), IsOk());
    o.size += 512;
    EXPECT_THAT(build_initial_layout(o),
                IsInvalid("image size 137438953984 exceeds limit 137438953472"));
}

TEST(Qcow2Layout, OptionErrors) {
    auto with = [](auto change) {
        CreateOptions o = options_of_size(1 << 20);
        change(o);
        return validate_create_options(o);
    };
    EXPECT_THAT(with([](CreateOptions& o) { o.version = 4; }),
                IsInvalid("version 4 must be 2 or 3"));
    EXPECT_THAT(with([](CreateOptions& o) { o.size = 1000; }),
                IsInvalid("image size 1000 is not a multiple of 512"));
    EXPECT_THAT(with([](CreateOptions& o) { o.cluster_bits = 22; }),
                IsInvalid("cluster_size 4194304 must be a power of two"));
    EXPECT_THAT(with([](CreateOptions& o) { o.refcount_order = 7; }),
                IsInvalid("refcount_order 7 exceeds limit 6"));
    EXPECT_THAT(with([](CreateOptions& o) { o.version = 2, o.refcount_order = 3; }),
                IsInvalid("refcount_bits 8 requires version 3"));
    EXPECT_THAT(with([](CreateOptions& o) { o.version = 2, o.lazy_refcounts = true; }),
                IsInvalid("lazy_refcounts requires version 3"));
    EXPECT_THAT(with([](CreateOptions& o) { o.version = 2, o.data_file = "d"; }),
                IsInvalid("data_file requires version 3"));
    EXPECT_THAT(with([](CreateOptions& o) { o.version = 2, o.compression_type = 1; }),
                IsInvalid("compression_type 1 requires version 3"));
    EXPECT_THAT(with([](CreateOptions& o) { o.version = 2, o.extended_l2 = true; }),
                IsInvalid("extended_l2 requires version 3"));
    EXPECT_THAT(with([](CreateOptions& o) { o.extended_l2 = true, o.cluster_bits = 13; }),
                IsInvalid("extended_l2 requires cluster_size >= 16384, got 8192"));
    EXPECT_THAT(with([](CreateOptions& o) { o.compression_type = 2; }),
                IsInvalid("compression_type 2 is not supported"));
    EXPECT_THAT(with([](CreateOptions& o) { o.backing_format = "raw"; }),
                IsInvalid("backing_format requires a backing file"));
    EXPECT_THAT(with([](CreateOptions& o) { o.backing_file = std::string(1024, 'b'); }),
                IsInvalid("backing file name length 1024 exceeds limit 1023"));
    EXPECT_THAT(
        with([](CreateOptions& o) { o.backing_file = "b", o.backing_format = "a-very-long-name"; }),
        IsInvalid("backing format name length 16 exceeds limit 15"));
    EXPECT_THAT(with([](CreateOptions& o) { o.data_file_raw = true; }),
                IsInvalid("data_file_raw requires data_file"));
    EXPECT_THAT(with([](CreateOptions& o) {
                    o.data_file = "d", o.data_file_raw = true, o.backing_file = "b";
                }),
                IsInvalid("data_file_raw cannot be used with a backing file"));
}

TEST(Qcow2Layout, BackingNameFillsCluster) {
    // 512-byte clusters: header 112 + backing format 16 + end 8 leaves 376.
    CreateOptions o = options_of_size(1 << 20);
    o.cluster_bits = 9;
    o.backing_file = std::string(376, 'n');
    o.backing_format = "qcow2";
    auto layout = build_initial_layout(o);
    ASSERT_THAT(layout, IsOk());
    expect_consistent(*layout);
    o.backing_file = std::string(377, 'n');
    EXPECT_THAT(build_initial_layout(o), IsInvalid("more than cluster_size 512"));
}

// --- interop with qemu-img ----------------------------------------------------

struct InteropCase {
    std::string qemu_options;  // for qemu-img create -o
    CreateOptions options;
    // QEMU grows its metadata step by step (first-fit allocation while the
    // L1 table is resized), so once the metadata outgrows the first refcount
    // block its placement differs from our precomputed one; both are valid.
    bool byte_identical = true;
};

std::vector<InteropCase> interop_cases() {
    std::vector<InteropCase> cases;
    auto add = [&](std::string qemu, uint64_t size, auto change, bool identical = true) {
        CreateOptions o = options_of_size(size);
        change(o);
        cases.push_back({std::move(qemu), o, identical});
    };
    add("", 1ull << 30, [](CreateOptions&) {});
    add("", 0, [](CreateOptions&) {});
    add("compat=0.10", 100 << 20, [](CreateOptions& o) { o.version = 2; });
    add("cluster_size=4096", 1ull << 30, [](CreateOptions& o) { o.cluster_bits = 12; });
    add("cluster_size=512,refcount_bits=1", 1ull << 30,
        [](CreateOptions& o) { o.cluster_bits = 9, o.refcount_order = 0; });
    add(
        "cluster_size=512,refcount_bits=64", 4ull << 30,
        [](CreateOptions& o) { o.cluster_bits = 9, o.refcount_order = 6; }, false);
    add("cluster_size=2M,refcount_bits=8", 1ull << 40,
        [](CreateOptions& o) { o.cluster_bits = 21, o.refcount_order = 3; });
    add("refcount_bits=2", 10ull << 30, [](CreateOptions& o) { o.refcount_order = 1; });
    add("refcount_bits=4,lazy_refcounts=on", 1ull << 30,
        [](CreateOptions& o) { o.refcount_order = 2, o.lazy_refcounts = true; });
    add("refcount_bits=32", 1ull << 30, [](CreateOptions& o) { o.refcount_order = 5; });
    add("extended_l2=on", 1ull << 30, [](CreateOptions& o) { o.extended_l2 = true; });
    add("extended_l2=on,cluster_size=16k", 3ull << 30,
        [](CreateOptions& o) { o.extended_l2 = true, o.cluster_bits = 14; });
    add("compression_type=zstd", 1ull << 30,
        [](CreateOptions& o) { o.compression_type = kCompressionZstd; });
    add("compat=0.10,cluster_size=1024", 64 << 20,
        [](CreateOptions& o) { o.version = 2, o.cluster_bits = 10; });
    return cases;
}

TEST(Qcow2LayoutInterop, ByteIdenticalToQemuImgCreateAndCheckClean) {
    if (!have_qemu_img()) GTEST_SKIP() << "qemu-img not in PATH; interop check skipped";
    ScratchDir dir;
    ASSERT_TRUE(dir.ok());
    for (const InteropCase& c : interop_cases()) {
        SCOPED_TRACE("-o " + c.qemu_options + " size " + std::to_string(c.options.size));
        auto layout = build_initial_layout(c.options);
        ASSERT_THAT(layout, IsOk());
        const std::string ours = dir.file("ours.qcow2");
        const std::string theirs = dir.file("theirs.qcow2");
        std::filesystem::remove(ours);
        std::filesystem::remove(theirs);
        for (const LayoutWrite& w : layout->writes)
            ASSERT_TRUE(write_at(ours, w.offset, w.bytes));

        const CommandResult check = run_command("qemu-img check " + shell_quote(ours));
        EXPECT_EQ(check.exit_status, 0) << check.output;
        EXPECT_THAT(check.output, ::testing::HasSubstr("No errors were found on the image."));

        std::string create = "qemu-img create -f qcow2 ";
        if (!c.qemu_options.empty()) create += "-o " + c.qemu_options + " ";
        const CommandResult created =
            run_command(create + shell_quote(theirs) + " " + std::to_string(c.options.size));
        ASSERT_EQ(created.exit_status, 0) << created.output;
        if (c.byte_identical) {
            const std::vector<std::byte> a = read_file(ours);
            const std::vector<std::byte> b = read_file(theirs);
            EXPECT_EQ(a.size(), b.size());
            const auto diff = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
            EXPECT_TRUE(a == b) << "first difference at byte " << (diff.first - a.begin());
        }
    }
}

TEST(Qcow2LayoutInterop, BackingFileAndDataFileImagesCheckClean) {
    if (!have_qemu_img()) GTEST_SKIP() << "qemu-img not in PATH; interop check skipped";
    ScratchDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string base = dir.file("base.qcow2");
    ASSERT_EQ(run_command("qemu-img create -f qcow2 " + shell_quote(base) + " 1G").exit_status, 0);

    CreateOptions backed = options_of_size(1ull << 30);
    backed.backing_file = base;
    backed.backing_format = "qcow2";
    CreateOptions data = options_of_size(1ull << 30);
    data.data_file = dir.file("data.raw");
    for (const CreateOptions& o : {backed, data}) {
        auto layout = build_initial_layout(o);
        ASSERT_THAT(layout, IsOk());
        const std::string image = dir.file("image.qcow2");
        std::filesystem::remove(image);
        for (const LayoutWrite& w : layout->writes)
            ASSERT_TRUE(write_at(image, w.offset, w.bytes));
        if (o.data_file) {
            ASSERT_EQ(run_command("truncate -s 1G " + shell_quote(*o.data_file)).exit_status, 0);
        }
        const CommandResult check = run_command("qemu-img check " + shell_quote(image));
        EXPECT_EQ(check.exit_status, 0) << check.output;
        const CommandResult info = run_command("qemu-img info " + shell_quote(image));
        EXPECT_EQ(info.exit_status, 0) << info.output;
        if (o.backing_file) {
            EXPECT_THAT(info.output, ::testing::HasSubstr("backing file: " + base));
            EXPECT_THAT(info.output, ::testing::HasSubstr("backing file format: qcow2"));
        } else {
            EXPECT_THAT(info.output, ::testing::HasSubstr("data file: " + *o.data_file));
        }
    }
}

}  // namespace
}  // namespace coblock::qcow2
