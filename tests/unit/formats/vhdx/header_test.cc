// Tests of formats/vhdx/header: file identifier, header decode/encode,
// current-header selection (including Disk2VHD's equal sequence numbers),
// field validation and the double header update.
#include "formats/vhdx/header.h"

#include "formats/crc32c.h"
#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

// A header slot built field by field, checksummed with crc32c directly.
Bytes header_bytes(uint64_t seq, uint16_t version = 1, uint16_t log_version = 0,
                   uint32_t log_length = 0x100000, uint64_t log_offset = 0x100000,
                   Guid log_guid = {}) {
    Bytes b(4096);
    put_text(b, 0, "head");
    put64(b, 8, seq);
    put_guid(b, 16, test_guid(1));
    put_guid(b, 32, test_guid(2));
    put_guid(b, 48, log_guid);
    put16(b, 64, log_version);
    put16(b, 66, version);
    put32(b, 68, log_length);
    put64(b, 72, log_offset);
    put32(b, 4, crc32c(b));  // the checksum field is still zero here
    return b;
}

TEST(VhdxFileIdentifier, ParseAndEncode) {
    Bytes b(kFileIdentifierSize);
    put_text(b, 0, "vhdxfile");
    const std::u16string creator = u"QEMU v7.2.22";
    for (size_t i = 0; i < creator.size(); ++i)
        put16(b, 8 + 2 * i, creator[i]);
    EXPECT_TRUE(probe_vhdx(b));
    auto id = parse_file_identifier(b);
    ASSERT_OK(id);
    EXPECT_EQ(id->creator, creator);

    Bytes out(kFileIdentifierSize, std::byte{0xAA});
    ASSERT_OK(encode_file_identifier(*id, out));
    EXPECT_EQ(out, b);
    auto again = parse_file_identifier(out);
    ASSERT_OK(again);
    EXPECT_EQ(*again, *id);
}

TEST(VhdxFileIdentifier, CreatorWithoutTerminatorUsesAll256Units) {
    Bytes b(kFileIdentifierMinSize);
    put_text(b, 0, "vhdxfile");
    for (size_t i = 0; i < 256; ++i)
        put16(b, 8 + 2 * i, 'a');
    auto id = parse_file_identifier(b);
    ASSERT_OK(id);
    EXPECT_EQ(id->creator.size(), 256u);
}

TEST(VhdxFileIdentifier, Errors) {
    Bytes b(kFileIdentifierMinSize);
    put_text(b, 0, "QFI\xfb....");
    EXPECT_FALSE(probe_vhdx(b));
    EXPECT_ERROR(parse_file_identifier(b), ErrorKind::kCorrupt,
                 "signature 'QFI.....' is not 'vhdxfile'");
    EXPECT_ERROR(parse_file_identifier(ByteSpan(b).first(100)), ErrorKind::kInvalidArgument,
                 "needs 520 bytes, got 100");
    EXPECT_FALSE(probe_vhdx(ByteSpan(b).first(3)));
    FileIdentifier long_creator{std::u16string(257, u'x')};
    EXPECT_ERROR(encode_file_identifier(long_creator, b), ErrorKind::kInvalidArgument,
                 "creator of 257 utf-16 units exceeds limit 256");
}

TEST(VhdxHeader, SpecChecksumVector) {
    Bytes b(4096);
    put_text(b, 0, "head");
    put64(b, 8, 1);
    put16(b, 66, 1);
    put32(b, 68, 0x100000);
    put64(b, 72, 0x100000);
    Header h;
    h.sequence_number = 1;
    h.log_length = 0x100000;
    h.log_offset = 0x100000;
    Bytes encoded(4096);
    ASSERT_OK(encode_header(h, encoded));
    EXPECT_EQ(get32(encoded, 4), 0xF1FD4713u);
    put32(b, 4, 0xF1FD4713u);
    EXPECT_EQ(encoded, b);
}

TEST(VhdxHeader, ParseFieldsAndRoundTrip) {
    const Bytes b = header_bytes(0xD839DEB6, 1, 0, 0x200000, 0x300000, test_guid(9));
    auto h = parse_header(b);
    ASSERT_OK(h);
    EXPECT_EQ(h->sequence_number, 0xD839DEB6u);
    EXPECT_EQ(h->file_write_guid, test_guid(1));
    EXPECT_EQ(h->data_write_guid, test_guid(2));
    EXPECT_EQ(h->log_guid, test_guid(9));
    EXPECT_EQ(h->version, 1);
    EXPECT_EQ(h->log_version, 0);
    EXPECT_EQ(h->log_length, 0x200000u);
    EXPECT_EQ(h->log_offset, 0x300000u);
    Bytes out(4096);
    ASSERT_OK(encode_header(*h, out));
    EXPECT_EQ(out, b);
    auto again = parse_header(out);
    ASSERT_OK(again);
    EXPECT_EQ(*again, *h);
}

TEST(VhdxHeader, ChecksumCoversReservedBytes) {
    Bytes b = header_bytes(5);
    put8(b, 4000, 1);
    EXPECT_ERROR(parse_header(b), ErrorKind::kCorrupt, "header checksum");
}

TEST(VhdxHeader, ParseErrors) {
    Bytes b = header_bytes(5);
    put_text(b, 0, "HEAD");
    EXPECT_ERROR(parse_header(b), ErrorKind::kCorrupt, "header signature 0x44414548 is not 'head'");
    Bytes c = header_bytes(5);
    put32(c, 4, 0x12345678);
    EXPECT_ERROR(parse_header(c), ErrorKind::kCorrupt, "header checksum 0x12345678 does not match");
    EXPECT_ERROR(parse_header(ByteSpan(c).first(100)), ErrorKind::kInvalidArgument, "got 100");
    EXPECT_ERROR(encode_header(Header{}, c = Bytes(10)), ErrorKind::kInvalidArgument,
                 "header buffer of 10 bytes");
}

TEST(VhdxHeader, Validation) {
    Header h;
    h.log_offset = kMiB;
    h.log_length = kMiB;
    EXPECT_TRUE(validate_header(h).ok());
    Header v = h;
    v.version = 2;
    EXPECT_ERROR(validate_header(v), ErrorKind::kUnsupported, "unsupported header version 2");
    v = h;
    v.log_version = 3;
    EXPECT_ERROR(validate_header(v), ErrorKind::kCorrupt, "unsupported log version 3");
    v = h;
    v.log_offset = 0x80000;
    EXPECT_ERROR(validate_header(v), ErrorKind::kCorrupt, "log offset 0x80000");
    v.log_offset = 0x180000;
    EXPECT_ERROR(validate_header(v), ErrorKind::kCorrupt, "log offset 0x180000");
    v = h;
    v.log_length = 0x1000;
    EXPECT_ERROR(validate_header(v), ErrorKind::kCorrupt, "log length 0x1000");
    v = h;
    v.log_length = 0;
    EXPECT_TRUE(validate_header(v).ok());
    v.log_guid = test_guid(3);
    EXPECT_ERROR(validate_header(v), ErrorKind::kCorrupt, "log length is 0");
}

TEST(VhdxHeaderSelection, GreaterSequenceWins) {
    auto sel = select_header(header_bytes(10), header_bytes(11));
    ASSERT_OK(sel);
    EXPECT_EQ(sel->current_slot, 1);
    EXPECT_EQ(sel->current.sequence_number, 11u);
    EXPECT_TRUE(sel->other_valid);
    EXPECT_EQ(sel->other.sequence_number, 10u);

    sel = select_header(header_bytes(12), header_bytes(11));
    ASSERT_OK(sel);
    EXPECT_EQ(sel->current_slot, 0);
    EXPECT_EQ(sel->current.sequence_number, 12u);
}

TEST(VhdxHeaderSelection, OnlyValidHeaderWins) {
    Bytes bad = header_bytes(99);
    put32(bad, 4, 0);  // broken checksum
    auto sel = select_header(bad, header_bytes(3));
    ASSERT_OK(sel);
    EXPECT_EQ(sel->current_slot, 1);
    EXPECT_FALSE(sel->other_valid);
    sel = select_header(header_bytes(3), Bytes(4096));
    ASSERT_OK(sel);
    EXPECT_EQ(sel->current_slot, 0);
}

TEST(VhdxHeaderSelection, VersionOtherThanOneMakesHeaderInvalid) {
    // QEMU's rule: the newer header with version 2 is skipped.
    auto sel = select_header(header_bytes(5), header_bytes(6, 2));
    ASSERT_OK(sel);
    EXPECT_EQ(sel->current.sequence_number, 5u);
    EXPECT_ERROR(select_header(header_bytes(5, 2), header_bytes(6, 3)), ErrorKind::kUnsupported,
                 "unsupported header version 2");
}

TEST(VhdxHeaderSelection, EqualSequenceNumbersIdenticalHeadersAccepted) {
    // Disk2VHD writes two identical headers.
    auto sel = select_header(header_bytes(7), header_bytes(7));
    ASSERT_OK(sel);
    EXPECT_EQ(sel->current_slot, 0);
    EXPECT_EQ(sel->current.sequence_number, 7u);
}

TEST(VhdxHeaderSelection, EqualSequenceNumbersDifferentHeadersRefused) {
    EXPECT_ERROR(select_header(header_bytes(7), header_bytes(7, 1, 0, 0x200000)),
                 ErrorKind::kCorrupt, "both headers have sequence number 7 but differ");
}

TEST(VhdxHeaderSelection, NoValidHeader) {
    EXPECT_ERROR(select_header(Bytes(4096), Bytes(4096)), ErrorKind::kCorrupt,
                 "no valid header: header 1: vhdx: header signature 0x0");
}

TEST(VhdxHeaderSelection, CurrentHeaderFieldsValidated) {
    EXPECT_ERROR(select_header(header_bytes(1), header_bytes(2, 1, 1)), ErrorKind::kCorrupt,
                 "unsupported log version 1");
    EXPECT_ERROR(select_header(header_bytes(1, 1, 0, 0x100000, 0x1000), Bytes(4096)),
                 ErrorKind::kCorrupt, "log offset 0x1000");
}

TEST(VhdxHeaderUpdate, WritesNonCurrentSlotFirst) {
    auto sel = select_header(header_bytes(10), header_bytes(11));
    ASSERT_OK(sel);
    Header fields = sel->current;
    fields.log_guid = test_guid(7);
    auto writes = plan_header_update(*sel, fields);
    ASSERT_OK(writes);
    EXPECT_EQ((*writes)[0].file_offset, kHeader1Offset);
    EXPECT_EQ((*writes)[0].header.sequence_number, 12u);
    EXPECT_EQ((*writes)[1].file_offset, kHeader2Offset);
    EXPECT_EQ((*writes)[1].header.sequence_number, 13u);
    // Both writes parse back; after applying them, slot 2 is current again.
    auto after = select_header((*writes)[0].bytes, (*writes)[1].bytes);
    ASSERT_OK(after);
    EXPECT_EQ(after->current_slot, 1);
    EXPECT_EQ(after->current.log_guid, test_guid(7));
    // A crash after the first write leaves slot 1 current with the new fields.
    auto mid = select_header((*writes)[0].bytes, header_bytes(11));
    ASSERT_OK(mid);
    EXPECT_EQ(mid->current_slot, 0);
    EXPECT_EQ(mid->current.sequence_number, 12u);
}

TEST(VhdxHeaderUpdate, SequenceOverflowRefused) {
    HeaderSelection sel;
    sel.current.sequence_number = UINT64_MAX - 1;
    EXPECT_ERROR(plan_header_update(sel, sel.current), ErrorKind::kCorrupt,
                 "sequence number 18446744073709551614 cannot be advanced");
}

}  // namespace
}  // namespace coblock::vhdx
