// Tests of formats/vhdx/log: entries built by hand (spec §14.3's QEMU
// entry), every validation error, encode/parse round trips, the builder and
// the placement of an entry in the ring.
#include "formats/vhdx/log.h"

#include "formats/crc32c.h"
#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

constexpr uint64_t kLogLength = kMiB;

Bytes bat_sector_with_first_entry(uint64_t entry) {
    Bytes s(4096);
    put64(s, 0, entry);
    for (size_t i = 1; i < 512; ++i)
        put64(s, 8 * i, 2);  // ZERO entries
    return s;
}

// The entry QEMU wrote for `write -P 0xab 4096 4096` (spec §14.3), by hand.
Bytes qemu_entry(const Guid& log_guid) {
    const Bytes target = bat_sector_with_first_entry(0x800006);
    Bytes b(0x2000);
    put_text(b, 0, "loge");
    put32(b, 8, 0x2000);
    put32(b, 12, 0);
    put64(b, 16, 1);
    put32(b, 24, 1);
    put_guid(b, 32, log_guid);
    put64(b, 48, 0x1000000);
    put64(b, 56, 0x1000000);
    put_text(b, 64, "desc");
    put32(b, 68, get32(target, 4092));  // trailing bytes
    put64(b, 72, get64(target, 0));     // leading bytes
    put64(b, 80, 0x200000);
    put64(b, 88, 1);
    put_text(b, 4096, "data");
    put32(b, 4096 + 4, 0);
    std::copy(target.begin() + 8, target.begin() + 4092, b.begin() + 4096 + 8);
    put32(b, 4096 + 4092, 1);
    put32(b, 4, crc32c(b));
    return b;
}

TEST(VhdxLog, DescriptorSectors) {
    EXPECT_EQ(log_descriptor_sectors(0), 1u);
    EXPECT_EQ(log_descriptor_sectors(126), 1u);
    EXPECT_EQ(log_descriptor_sectors(127), 2u);
    EXPECT_EQ(log_descriptor_sectors(254), 2u);
    EXPECT_EQ(log_descriptor_sectors(255), 3u);
}

TEST(VhdxLog, ParsesQemuEntry) {
    const Guid guid = test_guid(6);
    const Bytes bytes = qemu_entry(guid);
    auto e = parse_log_entry(bytes, guid, kLogLength);
    ASSERT_OK(e);
    EXPECT_EQ(e->header.entry_length, 0x2000u);
    EXPECT_EQ(e->header.tail, 0u);
    EXPECT_EQ(e->header.sequence_number, 1u);
    EXPECT_EQ(e->header.descriptor_count, 1u);
    EXPECT_EQ(e->header.flushed_file_offset, 0x1000000u);
    EXPECT_EQ(e->header.last_file_offset, 0x1000000u);
    ASSERT_EQ(e->descriptors.size(), 1u);
    EXPECT_EQ(e->descriptors[0].kind, LogDescriptor::Kind::kData);
    EXPECT_EQ(e->descriptors[0].file_offset, 0x200000u);
    EXPECT_EQ(e->descriptors[0].data, bat_sector_with_first_entry(0x800006));
    // The encoder reproduces QEMU's bytes exactly.
    auto encoded = encode_log_entry(*e);
    ASSERT_OK(encoded);
    EXPECT_EQ(*encoded, bytes);
}

TEST(VhdxLog, BuildAndRoundTripWithZeroDescriptorsAndManyDescriptors) {
    LogEntryParams p{test_guid(1), 0x100000005ull, 0x3000, 2 * kMiB, 3 * kMiB};
    std::vector<SectorUpdate> updates;
    for (uint64_t i = 0; i < 130; ++i) {  // more than fit in the first descriptor sector
        Bytes data(4096);
        for (size_t k = 0; k < data.size(); ++k)
            data[k] = static_cast<std::byte>(i + k);
        updates.push_back({0x200000 + 4096 * i, data});
    }
    const std::pair<uint64_t, uint64_t> zeros[] = {{0x400000, 0x10000}};
    auto bytes = build_log_entry(p, updates, zeros);
    ASSERT_OK(bytes);
    EXPECT_EQ(bytes->size(), (2 + 130) * 4096u);
    // Sequence halves in the first data sector: high word 1, low word 5.
    EXPECT_EQ(get32(*bytes, 2 * 4096 + 4), 1u);
    EXPECT_EQ(get32(*bytes, 2 * 4096 + 4092), 5u);
    auto e = parse_log_entry(*bytes, p.log_guid, 4 * kMiB);
    ASSERT_OK(e);
    EXPECT_EQ(e->header.tail, 0x3000u);
    EXPECT_EQ(e->header.sequence_number, 0x100000005u);
    EXPECT_EQ(e->header.descriptor_count, 131u);
    ASSERT_EQ(e->descriptors.size(), 131u);
    for (size_t i = 0; i < 130; ++i) {
        EXPECT_EQ(e->descriptors[i].file_offset, updates[i].file_offset);
        EXPECT_EQ(e->descriptors[i].data, updates[i].data);
    }
    EXPECT_EQ(e->descriptors[130].kind, LogDescriptor::Kind::kZero);
    EXPECT_EQ(e->descriptors[130].zero_length, 0x10000u);
    auto again = encode_log_entry(*e);
    ASSERT_OK(again);
    EXPECT_EQ(*again, *bytes);
    auto back = parse_log_entry(*again, p.log_guid, 4 * kMiB);
    ASSERT_OK(back);
    EXPECT_EQ(*back, *e);
}

TEST(VhdxLog, PaddingSectorsAcceptedAndPreserved) {
    LogEntry e;
    e.header = {4 * 4096, 0, 9, 0, test_guid(2), kMiB, kMiB};
    auto bytes = encode_log_entry(e);
    ASSERT_OK(bytes);
    EXPECT_EQ(bytes->size(), 4 * 4096u);
    auto back = parse_log_entry(*bytes, test_guid(2), kLogLength);
    ASSERT_OK(back);
    EXPECT_EQ(*back, e);
    EXPECT_TRUE(back->descriptors.empty());
}

TEST(VhdxLog, HeaderErrors) {
    const Guid g = test_guid(6);
    auto with = [&](size_t off, uint64_t v, int width) {
        Bytes b = qemu_entry(g);
        if (width == 4)
            put32(b, off, static_cast<uint32_t>(v));
        else
            put64(b, off, v);
        return b;
    };
    EXPECT_ERROR(parse_log_entry(with(0, 0x41414141, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry signature 0x41414141 is not 'loge'");
    EXPECT_ERROR(parse_log_entry(with(8, 0, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry length 0x0");
    EXPECT_ERROR(parse_log_entry(with(8, 0x2100, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry length 0x2100");
    EXPECT_ERROR(parse_log_entry(with(8, 0x200000, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry length 0x200000 is not a non-zero multiple of 4096 within the log "
                 "length 0x100000");
    EXPECT_ERROR(parse_log_entry(with(12, 0x100, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry tail 0x100");
    EXPECT_ERROR(parse_log_entry(with(12, kLogLength, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry tail 0x100000");
    EXPECT_ERROR(parse_log_entry(with(16, 0, 8), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry sequence number is 0");
    EXPECT_ERROR(parse_log_entry(with(24, 300, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry descriptor count 300 does not fit in length 0x2000");
    EXPECT_ERROR(parse_log_entry(qemu_entry(g), test_guid(7), kLogLength), ErrorKind::kCorrupt,
                 "log entry guid " + g.to_string() + " does not match the header's log guid " +
                     test_guid(7).to_string());
    EXPECT_ERROR(parse_log_entry(with(4, 0xBAD, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry 1 checksum 0xbad does not match");
    EXPECT_ERROR(parse_log_entry(ByteSpan(qemu_entry(g)).first(32), g, kLogLength),
                 ErrorKind::kInvalidArgument, "needs 64 bytes, got 32");
    EXPECT_ERROR(parse_log_entry(ByteSpan(qemu_entry(g)).first(4096), g, kLogLength),
                 ErrorKind::kInvalidArgument, "but 4096 bytes supplied");
}

// Changes a field of the QEMU entry and fixes the checksum, so the
// descriptor checks (not the CRC) must catch it.
Bytes mutated(const Guid& g, size_t off, uint64_t v, int width) {
    Bytes b = qemu_entry(g);
    if (width == 4)
        put32(b, off, static_cast<uint32_t>(v));
    else
        put64(b, off, v);
    put32(b, 4, 0);
    put32(b, 4, crc32c(b));
    return b;
}

TEST(VhdxLog, DescriptorAndDataSectorErrors) {
    const Guid g = test_guid(6);
    EXPECT_ERROR(parse_log_entry(mutated(g, 64, 0x78787878, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry 1 descriptor 0 signature 0x78787878 is neither 'desc' nor 'zero'");
    EXPECT_ERROR(parse_log_entry(mutated(g, 88, 2, 8), g, kLogLength), ErrorKind::kCorrupt,
                 "descriptor 0 sequence 2 does not match 1");
    EXPECT_ERROR(parse_log_entry(mutated(g, 80, 0x200200, 8), g, kLogLength), ErrorKind::kCorrupt,
                 "descriptor 0 file offset 0x200200 is not a multiple of 4096");
    EXPECT_ERROR(parse_log_entry(mutated(g, 4096, 0x61746164 + 1, 4), g, kLogLength),
                 ErrorKind::kCorrupt,
                 "descriptor 0 data sector signature 0x61746165 is not 'data'");
    EXPECT_ERROR(parse_log_entry(mutated(g, 4096 + 4092, 2, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "descriptor 0 data sector sequence 2 does not match 1");
    EXPECT_ERROR(parse_log_entry(mutated(g, 4096 + 4, 1, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "data sector sequence 4294967297 does not match 1");
    // Two data descriptors but one data sector.
    EXPECT_ERROR(parse_log_entry(mutated(g, 24, 2, 4), g, kLogLength), ErrorKind::kCorrupt,
                 "log entry 1 descriptor 1 signature 0x0");
    Bytes two = qemu_entry(g);
    std::copy(two.begin() + 64, two.begin() + 96, two.begin() + 96);
    put32(two, 24, 2);
    put32(two, 4, 0);
    put32(two, 4, crc32c(two));
    EXPECT_ERROR(parse_log_entry(two, g, kLogLength), ErrorKind::kCorrupt,
                 "descriptor 1 has no data sector in length 0x2000");
    // A zero descriptor with a length that is not a 4 KiB multiple.
    Bytes z = qemu_entry(g);
    put_text(z, 64, "zero");
    put32(z, 68, 0);
    put64(z, 72, 0x1001);
    put32(z, 4, 0);
    put32(z, 4, crc32c(z));
    EXPECT_ERROR(parse_log_entry(z, g, kLogLength), ErrorKind::kCorrupt,
                 "descriptor 0 zero length 0x1001 is not a multiple of 4096");
}

TEST(VhdxLog, EncodeAndBuildErrors) {
    LogEntry e;
    e.header.sequence_number = 1;
    e.descriptors.push_back({LogDescriptor::Kind::kData, 0x1000, 0, Bytes(100)});
    EXPECT_ERROR(encode_log_entry(e), ErrorKind::kInvalidArgument, "carries 100 bytes, not 4096");
    e.descriptors = {{LogDescriptor::Kind::kZero, 0x1000, 0x800, {}}};
    EXPECT_ERROR(encode_log_entry(e), ErrorKind::kInvalidArgument, "zero descriptor length 0x800");
    e.descriptors = {{LogDescriptor::Kind::kZero, 0x1001, 0x1000, {}}};
    EXPECT_ERROR(encode_log_entry(e), ErrorKind::kInvalidArgument, "file offset 0x1001");
    e.descriptors.clear();
    e.header.entry_length = 0x1800;
    EXPECT_ERROR(encode_log_entry(e), ErrorKind::kInvalidArgument, "log entry length 0x1800");

    const SectorUpdate none[1] = {{0x200000, Bytes(4096)}};
    EXPECT_ERROR(build_log_entry({Guid{}, 1, 0, kMiB, kMiB}, none), ErrorKind::kInvalidArgument,
                 "non-zero log guid");
    EXPECT_ERROR(build_log_entry({test_guid(1), 0, 0, kMiB, kMiB}, none),
                 ErrorKind::kInvalidArgument, "sequence number is 0");
    EXPECT_ERROR(build_log_entry({test_guid(1), 1, 0x10, kMiB, kMiB}, none),
                 ErrorKind::kInvalidArgument, "tail 0x10");
    EXPECT_ERROR(build_log_entry({test_guid(1), 1, 0, kMiB + 4096, kMiB}, none),
                 ErrorKind::kInvalidArgument,
                 "file offsets 0x101000 and 0x100000 must be multiples of 1 mib");
}

TEST(VhdxLog, PlaceEntryWrapsAtRingEnd) {
    const Bytes entry = qemu_entry(test_guid(6));
    auto w = place_log_entry(kMiB, kLogLength, 0x3000, entry);
    ASSERT_OK(w);
    ASSERT_EQ(w->size(), 1u);
    EXPECT_EQ((*w)[0].file_offset, kMiB + 0x3000);
    w = place_log_entry(kMiB, kLogLength, kLogLength - 4096, entry);
    ASSERT_OK(w);
    ASSERT_EQ(w->size(), 2u);
    EXPECT_EQ((*w)[0].file_offset, 2 * kMiB - 4096);
    EXPECT_EQ((*w)[0].bytes.size(), 4096u);
    EXPECT_EQ((*w)[1].file_offset, kMiB);
    EXPECT_EQ((*w)[1].bytes.size(), 4096u);
    EXPECT_ERROR(place_log_entry(kMiB, 4096, 0, entry), ErrorKind::kInvalidArgument,
                 "does not fit in the log of 4096");
    EXPECT_ERROR(place_log_entry(kMiB, kLogLength, 0x100, entry), ErrorKind::kInvalidArgument,
                 "log write position 0x100");
    EXPECT_ERROR(place_log_entry(kMiB, kLogLength, kLogLength, entry), ErrorKind::kInvalidArgument,
                 "log write position 0x100000");
}

}  // namespace
}  // namespace coblock::vhdx
