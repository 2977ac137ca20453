// Tests of the qcow2 snapshot table: incremental scan, parse of every field
// and of the extra data variants, exact re-encoding, limits, check rules.
#include "formats/qcow2/snapshot.h"

#include <random>

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

// Writes one entry at `at` by hand; returns the end (unpadded).
size_t put_entry(Bytes& b, size_t at, uint64_t l1_offset, uint32_t l1_size,
                 const std::string& extra, const std::string& id, const std::string& name) {
    b.be64(at, l1_offset)
        .be32(at + 8, l1_size)
        .be16(at + 12, static_cast<uint16_t>(id.size()))
        .be16(at + 14, static_cast<uint16_t>(name.size()))
        .be32(at + 16, 1700000000)
        .be32(at + 20, 123456789)
        .be64(at + 24, 987654321012)
        .be32(at + 32, 4096)
        .be32(at + 36, static_cast<uint32_t>(extra.size()));
    b.str(at + 40, extra).str(at + 40 + extra.size(), id);
    b.str(at + 40 + extra.size() + id.size(), name);
    return at + 40 + extra.size() + id.size() + name.size();
}

std::string be64s(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i)
        s[i] = static_cast<char>(v >> (56 - 8 * i));
    return s;
}

// Three entries: QEMU's 24 bytes of extra data; none (old v2); 30 bytes
// (three known fields plus 6 unknown bytes kept verbatim).
Bytes three_entry_table(size_t* size) {
    Bytes b(512);
    size_t end = put_entry(b, 0, 0x50000, 2, be64s(1ull << 33) + be64s(1ull << 30) + be64s(~0ull),
                           "1", "first");
    end = put_entry(b, (end + 7) / 8 * 8, 0x60000, 2, "", "2", "v2-style");
    end = put_entry(b, (end + 7) / 8 * 8, 0x70000, 4,
                    be64s(0) + be64s(2ull << 30) + be64s(42) + std::string("future", 6), "10",
                    "third snapshot");
    *size = end;
    return b;
}

TEST(Qcow2Snapshot, ParsesEveryField) {
    size_t size = 0;
    Bytes b = three_entry_table(&size);
    auto scan = scan_snapshot_table(b, 3);
    ASSERT_THAT(scan, IsOk());
    EXPECT_EQ(*scan, (SnapshotTableScan{true, size}));

    auto r = parse_snapshot_table(b, 3);
    ASSERT_THAT(r, IsOk());
    ASSERT_EQ(r->size(), 3u);
    const SnapshotEntry& a = (*r)[0];
    EXPECT_EQ(a.l1_table_offset, 0x50000u);
    EXPECT_EQ(a.l1_size, 2u);
    EXPECT_EQ(a.date_sec, 1700000000u);
    EXPECT_EQ(a.date_nsec, 123456789u);
    EXPECT_EQ(a.vm_clock_nsec, 987654321012u);
    EXPECT_EQ(a.vm_state_size, 4096u);
    EXPECT_EQ(a.vm_state_size_large, 1ull << 33);
    EXPECT_EQ(a.disk_size, 1ull << 30);
    EXPECT_EQ(a.icount, ~0ull);
    EXPECT_TRUE(a.unknown_extra.empty());
    EXPECT_EQ(a.id, "1");
    EXPECT_EQ(a.name, "first");
    EXPECT_EQ(snapshot_vm_state_size(a), 1ull << 33);
    EXPECT_EQ(snapshot_extra_data_size(a), 24u);

    const SnapshotEntry& v2 = (*r)[1];
    EXPECT_FALSE(v2.vm_state_size_large.has_value());
    EXPECT_FALSE(v2.disk_size.has_value());
    EXPECT_EQ(snapshot_vm_state_size(v2), 4096u);
    EXPECT_EQ(snapshot_disk_size(v2, 12345), 12345u);
    EXPECT_EQ(v2.name, "v2-style");

    const SnapshotEntry& c = (*r)[2];
    EXPECT_EQ(c.icount, 42u);
    EXPECT_EQ(c.unknown_extra.size(), 6u);
    EXPECT_EQ(c.unknown_extra[0], std::byte{'f'});
    EXPECT_EQ(c.id, "10");

    // Encoding reproduces the table byte for byte.
    auto encoded = encode_snapshot_table(*r);
    ASSERT_THAT(encoded, IsOk());
    ASSERT_EQ(encoded->size(), size);
    EXPECT_TRUE(std::equal(encoded->begin(), encoded->end(), b.data().begin()));
}

TEST(Qcow2Snapshot, ScanAsksForMoreBytes) {
    size_t size = 0;
    Bytes b = three_entry_table(&size);
    // Simulate a driver reading only what the scan asks for.
    uint64_t have = 0;
    int reads = 0;
    for (;;) {
        auto scan = scan_snapshot_table(ByteSpan(b).first(have), 3);
        ASSERT_THAT(scan, IsOk());
        if (scan->complete) {
            EXPECT_EQ(scan->bytes, size);
            break;
        }
        ASSERT_GT(scan->bytes, have);
        have = scan->bytes;
        ASSERT_LE(have, size);
        ++reads;
    }
    EXPECT_EQ(reads, 4);  // 40, entry 0 + 40, entry 1 + 40, the whole table
    EXPECT_EQ(*scan_snapshot_table({}, 0), (SnapshotTableScan{true, 0}));
}

TEST(Qcow2Snapshot, PartialExtraFieldsArePreserved) {
    for (size_t extra_size : {0, 4, 8, 12, 16, 20, 24, 31}) {
        SCOPED_TRACE(extra_size);
        Bytes b(256);
        std::string extra(extra_size, '\x5a');
        const size_t end = put_entry(b, 0, 0x10000, 1, extra, "id", "n");
        auto r = parse_snapshot_table(b, 1);
        ASSERT_THAT(r, IsOk());
        const SnapshotEntry& e = (*r)[0];
        EXPECT_EQ(e.vm_state_size_large.has_value(), extra_size >= 8);
        EXPECT_EQ(e.disk_size.has_value(), extra_size >= 16);
        EXPECT_EQ(e.icount.has_value(), extra_size >= 24);
        EXPECT_EQ(snapshot_extra_data_size(e), extra_size);
        auto encoded = encode_snapshot_table(*r);
        ASSERT_THAT(encoded, IsOk());
        ASSERT_EQ(encoded->size(), end);
        EXPECT_TRUE(std::equal(encoded->begin(), encoded->end(), b.data().begin()));
    }
}

TEST(Qcow2Snapshot, Limits) {
    Bytes b(2048);
    put_entry(b, 0, 0x10000, 1, std::string(1025, '\0'), "", "");
    EXPECT_THAT(scan_snapshot_table(b, 1),
                IsCorrupt("snapshot 0 extra_data_size 1025 exceeds limit 1024"));
    EXPECT_THAT(parse_snapshot_table(b, 1), IsCorrupt("extra_data_size 1025 exceeds limit 1024"));
    EXPECT_THAT(scan_snapshot_table(b, 65537), IsCorrupt("nb_snapshots 65537 exceeds limit 65536"));
    EXPECT_THAT(parse_snapshot_table(b, 65537), IsCorrupt("nb_snapshots 65537"));

    Bytes t(128);
    put_entry(t, 0, 0x10000, 1, "", "id", "name");
    EXPECT_THAT(parse_snapshot_table(ByteSpan(t).first(30), 1),
                IsCorrupt("snapshot table truncated at entry 0"));
    EXPECT_THAT(parse_snapshot_table(ByteSpan(t).first(45), 1),
                IsCorrupt("snapshot 0 of 46 bytes truncated"));
    EXPECT_THAT(parse_snapshot_table(ByteSpan(t).first(46), 1), IsOk());
    EXPECT_THAT(parse_snapshot_table(ByteSpan(t).first(46), 2),
                IsCorrupt("snapshot table truncated at entry 1"));
}

TEST(Qcow2Snapshot, TableSizeLimit) {
    // Entries of 1024 + 2 * 65535 bytes: the 64 MiB limit falls at entry 508.
    const uint64_t entry = 40 + 1024 + 65535 + 65535;
    const uint32_t count = static_cast<uint32_t>(kMaxSnapshotTableBytes / entry) + 1;
    std::vector<std::byte> table(align_up(entry, 8) * count);
    for (uint32_t i = 0; i < count; ++i) {
        std::byte* p = table.data() + align_up(entry, 8) * i;
        store_be<uint16_t>(p + 12, 65535);
        store_be<uint16_t>(p + 14, 65535);
        store_be<uint32_t>(p + 36, 1024);
    }
    EXPECT_THAT(scan_snapshot_table(table, count),
                IsCorrupt("snapshot table size " +
                          std::to_string(align_up(entry, 8) * (count - 1) + entry) +
                          " exceeds limit 67108864"));
    EXPECT_THAT(parse_snapshot_table(table, count), IsCorrupt("exceeds limit 67108864"));
    EXPECT_THAT(parse_snapshot_table(table, count - 1), IsOk());
}

TEST(Qcow2Snapshot, EncoderErrors) {
    SnapshotEntry e;
    e.id = std::string(65536, 'i');
    EXPECT_THAT(encode_snapshot_table(std::span(&e, 1)), IsInvalid("id or name longer than 65535"));
    e.id = "1";
    e.disk_size = 5;  // without vm_state_size_large
    EXPECT_THAT(encode_snapshot_table(std::span(&e, 1)),
                IsInvalid("extra data fields are not a prefix"));
    e.disk_size.reset();
    e.unknown_extra.resize(8);  // would read back as vm_state_size_large
    EXPECT_THAT(encode_snapshot_table(std::span(&e, 1)), IsInvalid("not a prefix"));
    e.vm_state_size_large = 1;
    e.disk_size = 2;
    e.icount = 3;
    e.unknown_extra.resize(1001);
    EXPECT_THAT(encode_snapshot_table(std::span(&e, 1)),
                IsInvalid("snapshot 0 extra data 1025 exceeds limit 1024"));
    e.unknown_extra.resize(1000);
    EXPECT_THAT(encode_snapshot_table(std::span(&e, 1)), IsOk());
    EXPECT_THAT(encode_snapshot_table({}), IsOk());
}

// A stand-in for the fuzz harness: whatever parses re-encodes and parses equal.
TEST(Qcow2Snapshot, MutationRoundTrip) {
    size_t size = 0;
    const Bytes base = three_entry_table(&size);
    std::mt19937_64 rng(2024);
    int parsed = 0;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        Bytes b = base;
        const int mutations = 1 + static_cast<int>(rng() % 3);
        for (int m = 0; m < mutations; ++m)
            b.u8(rng() % size, static_cast<uint8_t>(rng()));
        const uint32_t count = 1 + static_cast<uint32_t>(rng() % 3);
        auto scan = scan_snapshot_table(b, count);
        auto table = parse_snapshot_table(b, count);
        if (!table.ok()) continue;
        ++parsed;
        ASSERT_THAT(scan, IsOk());
        ASSERT_TRUE(scan->complete);
        auto encoded = encode_snapshot_table(*table);
        ASSERT_THAT(encoded, IsOk());
        ASSERT_EQ(encoded->size(), scan->bytes);
        auto again = parse_snapshot_table(*encoded, count);
        ASSERT_THAT(again, IsOk());
        ASSERT_EQ(*again, *table) << "iteration " << iteration;
    }
    EXPECT_GT(parsed, 5000);
}

TEST(Qcow2Snapshot, CheckRules) {
    const Geometry g{16, false, 4};
    SnapshotEntry e;
    e.l1_table_offset = 0x50000;
    e.l1_size = 2;
    e.vm_state_size_large = 0;
    e.disk_size = 1ull << 30;
    EXPECT_THAT(validate_snapshot_entry(e, g, 3, 0), IsOk());
    e.l1_table_offset = 0x50200;
    EXPECT_THAT(validate_snapshot_entry(e, g, 3, 4),
                IsCorrupt("snapshot 4 l1 table offset 0x50200 is not cluster aligned"));
    e.l1_table_offset = 0x50000;
    e.l1_size = 4194305;
    EXPECT_THAT(validate_snapshot_entry(e, g, 3, 1),
                IsCorrupt("snapshot 1 l1_size 4194305 exceeds limit 4194304"));
    e.l1_size = 2;
    e.disk_size.reset();
    EXPECT_THAT(validate_snapshot_entry(e, g, 3, 2),
                IsCorrupt("snapshot 2 has 8 bytes of extra data, version 3 needs at least 16"));
    EXPECT_THAT(validate_snapshot_entry(e, g, 2, 2), IsOk());
}

}  // namespace
}  // namespace coblock::qcow2
