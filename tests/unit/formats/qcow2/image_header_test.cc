// Tests of the whole qcow2 header cluster: parse of header + extensions +
// backing name, named unknown features, encoder, QEMU rewrite form, a
// mutation round-trip sweep, and byte-exact round trips of qemu-img images.
#include "formats/qcow2/image_header.h"

#include <random>

#include "formats/qcow2/l2_entry.h"
#include "formats/qcow2/refcount.h"
#include "formats/qcow2/snapshot.h"

#include "tests/unit/formats/qcow2/qemu_tools.h"
#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

// What `qemu-img create -f qcow2 -b a.qcow2 -F qcow2 b.qcow2` writes into
// cluster 0 (qcow2-notes.md §3.1), built by hand.
Bytes qemu_style_cluster_with_backing() {
    Bytes b = v3_cluster(16);
    size_t pos = 112;
    b.be32(pos, kExtBackingFormat).be32(pos + 4, 5).str(pos + 8, "qcow2");
    pos += 16;
    b.be32(pos, kExtFeatureTable).be32(pos + 4, 8 * 48);
    const char* names[] = {"dirty bit",        "corrupt bit",         "external data file",
                           "compression type", "extended L2 entries", "lazy refcounts",
                           "bitmaps",          "raw external data"};
    const uint8_t types[] = {0, 0, 0, 0, 0, 1, 2, 2};
    const uint8_t bits[] = {0, 1, 2, 3, 4, 0, 0, 1};
    for (int i = 0; i < 8; ++i) {
        b.u8(pos + 8 + 48 * i, types[i]).u8(pos + 9 + 48 * i, bits[i]);
        b.str(pos + 10 + 48 * i, names[i]);
    }
    pos += 8 + 384;
    EXPECT_EQ(pos, 0x208u);  // end marker (zeros) here
    pos += 8;
    b.str(pos, "a.qcow2").be64(kBackingOffsetAt, pos).be32(kBackingSizeAt, 7);
    return b;
}

TEST(Qcow2ImageHeader, ParsesHeaderExtensionsAndBackingName) {
    Bytes b = qemu_style_cluster_with_backing();
    auto r = parse_image_header(b);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->header.backing_file_offset, 0x210u);
    EXPECT_EQ(r->backing_file, "a.qcow2");
    EXPECT_EQ(r->extensions.backing_format, "qcow2");
    EXPECT_EQ(r->extensions.feature_table, qemu_feature_table());
    EXPECT_TRUE(r->extensions.unknown.empty());

    auto encoded = encode_image_header(*r);
    ASSERT_THAT(encoded, IsOk());
    EXPECT_EQ(*encoded, b.data());  // byte for byte
    auto normalized = normalize_for_rewrite(*r);
    ASSERT_THAT(normalized, IsOk());
    EXPECT_EQ(*normalized, *r);  // already in QEMU's rewrite form
}

TEST(Qcow2ImageHeader, NoBackingFile) {
    Bytes b = v3_cluster(12);
    auto r = parse_image_header(b);
    ASSERT_THAT(r, IsOk());
    EXPECT_FALSE(r->backing_file.has_value());
    EXPECT_EQ(r->extensions, HeaderExtensions{});
    EXPECT_EQ(*encode_image_header(*r), b.data());
}

TEST(Qcow2ImageHeader, UnknownIncompatibleFeatureNamedFromTable) {
    Bytes b = v3_cluster(16);
    b.be64(kIncompatAt, (1ull << 5) | kIncompatDirty);
    b.be32(112, kExtFeatureTable).be32(116, 48).u8(120, 0).u8(121, 5).str(122, "shiny feature");
    EXPECT_THAT(parse_image_header(b),
                IsUnsupported("qcow2: unsupported incompatible feature: shiny feature (bit 5)"));
    b.be32(112, 0).be32(116, 0);  // no table
    EXPECT_THAT(parse_image_header(b),
                IsUnsupported("qcow2: unsupported incompatible feature: unknown (bit 5)"));
}

TEST(Qcow2ImageHeader, Errors) {
    Bytes b = v3_cluster(16);
    EXPECT_THAT(parse_image_header(ByteSpan(b).first(4096)),
                IsCorrupt("header cluster truncated: 4096 bytes, need cluster_size 65536"));
    b.be32(112, kExtBackingFormat).be32(116, 0x10000);
    EXPECT_THAT(parse_image_header(b), IsCorrupt("header extension 0xe2792aca length 65536"));
    // The backing name bounds the extension area.
    Bytes c = v3_cluster(16);
    c.be32(112, kExtDataFile).be32(116, 16).be64(kBackingOffsetAt, 128).be32(kBackingSizeAt, 3);
    EXPECT_THAT(parse_image_header(c), IsCorrupt("length 16 exceeds the extension area (8 bytes"));
    // Header validation still runs after the extensions.
    Bytes d = v3_cluster(16);
    d.be32(kRefcountOrderAt, 7);
    EXPECT_THAT(parse_image_header(d), IsCorrupt("refcount_order 7"));
}

TEST(Qcow2ImageHeader, OldV2StyleBackingNameRightAfterHeader) {
    Bytes b = v2_cluster(16);
    b.be64(kBackingOffsetAt, 72).be32(kBackingSizeAt, 8).str(72, "base.img");
    auto r = parse_image_header(b);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->backing_file, "base.img");
    EXPECT_EQ(r->extensions, HeaderExtensions{});
    EXPECT_EQ(*encode_image_header(*r), b.data());

    // QEMU's rewrite moves the name after an end marker.
    auto n = normalize_for_rewrite(*r);
    ASSERT_THAT(n, IsOk());
    EXPECT_EQ(n->header.backing_file_offset, 80u);
    EXPECT_FALSE(n->extensions.feature_table.has_value());  // v2: never
    auto bytes = encode_image_header(*n);
    ASSERT_THAT(bytes, IsOk());
    EXPECT_EQ(*parse_image_header(*bytes), *n);
}

TEST(Qcow2ImageHeader, NormalizeForRewrite) {
    ImageHeader image;
    image.header = *parse_header(v3_cluster(16));
    image.header.size = (1ull << 30) - 100;  // rounded down to 512
    image.header.header_length = 104;
    image.header.unknown_fields.clear();
    image.extensions.unknown.push_back({0x77, {std::byte{1}}});
    image.extensions.data_file = "d";
    image.backing_file = "base";
    auto n = normalize_for_rewrite(image);
    ASSERT_THAT(n, IsOk());
    EXPECT_EQ(n->header.size, (1ull << 30) - 512);
    EXPECT_EQ(n->header.header_length, 112u);
    EXPECT_EQ(n->extensions.feature_table, qemu_feature_table());
    // data file (16) + feature table (392) + unknown (16) + end (8) after 112.
    EXPECT_EQ(n->header.backing_file_offset, 112u + 16 + 392 + 16 + 8);
    EXPECT_EQ(n->header.backing_file_size, 4u);
    auto bytes = encode_image_header(*n);
    ASSERT_THAT(bytes, IsOk());
    EXPECT_EQ(*parse_image_header(*bytes), *n);

    // Unknown header fields are kept and extend header_length.
    image.header.unknown_fields.assign(16, std::byte{0xab});
    n = normalize_for_rewrite(image);
    ASSERT_THAT(n, IsOk());
    EXPECT_EQ(n->header.header_length, 128u);
    EXPECT_EQ(*parse_image_header(*encode_image_header(*n)), *n);

    // Small clusters get no feature table.
    image.header.cluster_bits = 12;
    image.header.l1_size = 64;
    n = normalize_for_rewrite(image);
    ASSERT_THAT(n, IsOk());
    EXPECT_FALSE(n->extensions.feature_table.has_value());

    // Everything must fit in cluster 0.
    image.extensions.unknown.push_back({0x78, std::vector<std::byte>(4000)});
    EXPECT_THAT(normalize_for_rewrite(image), IsInvalid("more than cluster_size 4096"));
}

TEST(Qcow2ImageHeader, EncoderConsistencyErrors) {
    ImageHeader image = *parse_image_header(qemu_style_cluster_with_backing());
    ImageHeader no_name = image;
    no_name.backing_file.reset();
    EXPECT_THAT(encode_image_header(no_name), IsInvalid("backing_file and backing_file_offset"));
    ImageHeader wrong_size = image;
    wrong_size.backing_file = "longer name";
    EXPECT_THAT(encode_image_header(wrong_size), IsInvalid("backing_file_size 7 does not match"));
    ImageHeader too_many = image;
    too_many.extensions.data_file = "x";  // no longer fits before the name
    EXPECT_THAT(encode_image_header(too_many), IsInvalid("does not fit"));
    ImageHeader bad_bits = image;
    bad_bits.header.cluster_bits = 30;
    EXPECT_THAT(encode_image_header(bad_bits), IsInvalid("cannot encode cluster_bits 30"));
}

// A cheap stand-in for the fuzz harness: mutate a rich header cluster and
// check that whatever parses re-encodes to something that parses equal.
TEST(Qcow2ImageHeader, MutationRoundTrip) {
    Bytes base = v3_cluster(12);
    base.be32(kHeaderLengthAt, 120).be64(112, 0x0102030405060708);
    size_t pos = 120;
    base.be32(pos, kExtBackingFormat).be32(pos + 4, 3).str(pos + 8, "raw");
    pos += 16;
    base.be32(pos, kExtFeatureTable).be32(pos + 4, 48).u8(pos + 9, 6).str(pos + 10, "six");
    pos += 56;
    base.be32(pos, 0xabcdef01).be32(pos + 4, 5).str(pos + 8, "hello");
    pos += 16;
    base.be32(pos, kExtBitmaps).be32(pos + 4, 24);
    pos += 32 + 8;
    base.str(pos, "backing-name").be64(kBackingOffsetAt, pos).be32(kBackingSizeAt, 12);
    ASSERT_THAT(parse_image_header(base), IsOk());

    std::mt19937_64 rng(12345);
    int parsed = 0;
    int reencoded = 0;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        Bytes b = base;
        const int mutations = 1 + static_cast<int>(rng() % 4);
        for (int m = 0; m < mutations; ++m) {
            const size_t at = rng() % (pos + 16);
            b.u8(at, static_cast<uint8_t>(rng()));
        }
        auto image = parse_image_header(b);
        if (!image.ok()) continue;
        ++parsed;
        auto encoded = encode_image_header(*image);
        if (!encoded.ok()) {
            // Only the documented cases: extensions that no longer fit.
            EXPECT_EQ(encoded.error().kind, ErrorKind::kInvalidArgument);
            continue;
        }
        ++reencoded;
        auto again = parse_image_header(*encoded);
        ASSERT_THAT(again, IsOk());
        ASSERT_EQ(*again, *image) << "iteration " << iteration;
    }
    EXPECT_GT(parsed, 2000);
    EXPECT_GT(reencoded, parsed * 9 / 10);
}

// Images written by qemu-img must parse and re-encode byte for byte.
TEST(Qcow2ImageHeaderInterop, QemuImgHeadersRoundTripExactly) {
    if (!have_qemu_img()) GTEST_SKIP() << "qemu-img not in PATH; interop check skipped";
    ScratchDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string base = dir.file("base.qcow2");
    ASSERT_EQ(run_command("qemu-img create -f qcow2 " + shell_quote(base) + " 64M").exit_status, 0);
    const std::vector<std::string> option_sets = {
        "",
        "-o compat=0.10",
        "-o cluster_size=4096",
        "-o cluster_size=512,refcount_bits=1",
        "-o cluster_size=2M,refcount_bits=64",
        "-o extended_l2=on,cluster_size=32k",
        "-o compression_type=zstd,lazy_refcounts=on",
        "-b " + shell_quote(base) + " -F qcow2",
        "-o compat=0.10 -b " + shell_quote(base) + " -F qcow2",
        "-o data_file=" + shell_quote(dir.file("data.raw")) + ",data_file_raw=on",
    };
    for (const std::string& options : option_sets) {
        SCOPED_TRACE(options);
        const std::string image = dir.file("image.qcow2");
        std::filesystem::remove(image);
        const CommandResult created =
            run_command("qemu-img create -f qcow2 " + options + " " + shell_quote(image) + " 1G");
        ASSERT_EQ(created.exit_status, 0) << created.output;
        std::vector<std::byte> file = read_file(image);
        auto cluster_size = probe_cluster_size(file);
        ASSERT_THAT(cluster_size, IsOk());
        ASSERT_GE(file.size(), *cluster_size);
        const ByteSpan cluster0 = ByteSpan(file).first(*cluster_size);
        auto parsed = parse_image_header(cluster0);
        ASSERT_THAT(parsed, IsOk());
        auto encoded = encode_image_header(*parsed);
        ASSERT_THAT(encoded, IsOk());
        EXPECT_TRUE(std::equal(encoded->begin(), encoded->end(), cluster0.begin()));
        auto normalized = normalize_for_rewrite(*parsed);
        ASSERT_THAT(normalized, IsOk());
        EXPECT_EQ(*normalized, *parsed);
    }
}

// Walks a real image through every decoder: header, L1, L2 (normal and
// compressed entries), refcount table and blocks, snapshot table.
TEST(Qcow2ImageHeaderInterop, DecodersAgreeWithQemuImages) {
    if (!have_qemu_img() || run_command("command -v qemu-io").exit_status != 0) {
        GTEST_SKIP() << "qemu-img/qemu-io not in PATH; interop check skipped";
    }
    ScratchDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string raw = dir.file("data.raw");
    const std::string image = dir.file("image.qcow2");
    // Cluster 0: compressible text; cluster 1: zeros (left unallocated by
    // convert); cluster 2: compressible text again.
    ASSERT_EQ(run_command("qemu-img create -f raw " + shell_quote(raw) + " 1M").exit_status, 0);
    ASSERT_EQ(run_command("qemu-io -f raw -c 'write -P 0x61 0 64k' -c 'write -P 0x62 128k 64k' " +
                          shell_quote(raw))
                  .exit_status,
              0);
    const CommandResult converted =
        run_command("qemu-img convert -c -O qcow2 " + shell_quote(raw) + " " + shell_quote(image));
    ASSERT_EQ(converted.exit_status, 0) << converted.output;
    ASSERT_EQ(run_command("qemu-io -c 'write -P 0x63 256k 64k' " + shell_quote(image)).exit_status,
              0);
    ASSERT_EQ(run_command("qemu-img snapshot -c first " + shell_quote(image)).exit_status, 0);

    const std::vector<std::byte> file = read_file(image);
    auto parsed = parse_image_header(ByteSpan(file).first(65536));
    ASSERT_THAT(parsed, IsOk());
    const Header& h = parsed->header;
    const Geometry g = header_geometry(h);
    const HeaderPlan plan = header_plan(h);
    ASSERT_THAT(validate_table_extent("l1 table", plan.l1_table.offset, plan.l1_table.length, g,
                                      file.size()),
                IsOk());

    auto l1 = decode_be64_table(ByteSpan(file).subspan(plan.l1_table.offset), h.l1_size, "l1");
    ASSERT_THAT(l1, IsOk());
    const L1Entry l1e = decode_l1_entry((*l1)[0]);
    ASSERT_THAT(validate_l1_entry(l1e, g, 0), IsOk());
    EXPECT_FALSE(l1e.copied);  // shared with the snapshot now
    const ByteSpan l2 = ByteSpan(file).subspan(l1e.l2_offset, g.cluster_size());
    auto entry = [&](uint64_t index) {
        auto raw_entry = read_l2_entry(l2, index, false);
        EXPECT_THAT(raw_entry, IsOk());
        const L2Entry e = decode_l2_entry(raw_entry->word, 0, g);
        EXPECT_THAT(validate_l2_entry(e, g, {}, index), IsOk());
        return e;
    };
    EXPECT_EQ(classify_l2_entry(entry(0), g), ClusterType::kCompressed);
    EXPECT_EQ(classify_l2_entry(entry(1), g), ClusterType::kUnallocated);
    EXPECT_EQ(classify_l2_entry(entry(2), g), ClusterType::kCompressed);
    EXPECT_EQ(classify_l2_entry(entry(4), g), ClusterType::kNormal);
    EXPECT_FALSE(entry(4).copied);  // shared with the snapshot

    // Refcounts: the data cluster is referenced by the active and snapshot
    // L2 table, which itself is shared: 1. The compressed data clusters are
    // counted once per compressed cluster touching them.
    auto reftable = decode_be64_table(ByteSpan(file).subspan(plan.refcount_table.offset),
                                      plan.refcount_table.length / 8, "refcount table");
    ASSERT_THAT(reftable, IsOk());
    auto refcount_of = [&](uint64_t host_offset) -> uint64_t {
        const RefcountTableEntry rt =
            decode_refcount_table_entry((*reftable)[g.refcount_table_index(host_offset)]);
        EXPECT_THAT(validate_refcount_table_entry(rt, g, 0), IsOk());
        const ByteSpan block = ByteSpan(file).subspan(rt.block_offset, g.cluster_size());
        return *get_refcount(block, g.refcount_block_index(host_offset), h.refcount_order);
    };
    EXPECT_EQ(refcount_of(0), 1u);
    EXPECT_EQ(refcount_of(l1e.l2_offset), 2u);
    EXPECT_EQ(refcount_of(entry(4).host_offset), 2u);
    const ClusterRange compressed = compressed_host_clusters(entry(0), g);
    EXPECT_GE(refcount_of(compressed.first << g.cluster_bits), 2u);  // both compressed clusters

    // Snapshot table.
    ASSERT_EQ(h.nb_snapshots, 1u);
    auto scan = scan_snapshot_table(ByteSpan(file).subspan(h.snapshots_offset), 1);
    ASSERT_THAT(scan, IsOk());
    ASSERT_TRUE(scan->complete);
    auto snapshots =
        parse_snapshot_table(ByteSpan(file).subspan(h.snapshots_offset, scan->bytes), 1);
    ASSERT_THAT(snapshots, IsOk());
    const SnapshotEntry& s = (*snapshots)[0];
    EXPECT_EQ(s.id, "1");
    EXPECT_EQ(s.name, "first");
    EXPECT_EQ(s.disk_size, 1u << 20);
    EXPECT_EQ(s.l1_size, h.l1_size);
    EXPECT_THAT(validate_snapshot_entry(s, g, h.version, 0), IsOk());
    auto encoded = encode_snapshot_table(*snapshots);
    ASSERT_THAT(encoded, IsOk());
    EXPECT_TRUE(std::equal(encoded->begin(), encoded->end(),
                           file.begin() + static_cast<std::ptrdiff_t>(h.snapshots_offset)));
}

}  // namespace
}  // namespace coblock::qcow2
