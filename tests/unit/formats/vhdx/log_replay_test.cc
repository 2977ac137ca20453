// Tests of formats/vhdx/log_replay: finding the active sequence (valid
// chains, tails, wrapped entries, stale sequences) and refusing bad CRCs,
// bad sequence numbers, GUID mismatches, hostile targets and truncation.
#include "formats/vhdx/log_replay.h"

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

constexpr uint64_t kLogOffset = kMiB;
constexpr uint64_t kLogLength = kMiB;
constexpr uint64_t kFileSize = 16 * kMiB;

Bytes sector_of(uint8_t fill) {
    return Bytes(4096, static_cast<std::byte>(fill));
}

class VhdxLogReplay : public ::testing::Test {
  protected:
    VhdxLogReplay() : log_(kLogLength) {
        header_.log_guid = test_guid(1);
        header_.log_offset = kLogOffset;
        header_.log_length = kLogLength;
    }

    // Writes an entry at log position `pos` (wrapping); returns its length.
    uint64_t put_entry(uint64_t pos, uint64_t seq, uint32_t tail, std::vector<SectorUpdate> updates,
                       std::vector<std::pair<uint64_t, uint64_t>> zeros = {},
                       Guid guid = test_guid(1), uint64_t flushed = 8 * kMiB,
                       uint64_t last = 8 * kMiB) {
        auto bytes = build_log_entry({guid, seq, tail, flushed, last}, updates, zeros);
        EXPECT_TRUE(bytes.ok());
        auto writes = place_log_entry(kLogOffset, kLogLength, pos, *bytes);
        EXPECT_TRUE(writes.ok());
        for (const LogWrite& w : *writes)
            std::copy(w.bytes.begin(), w.bytes.end(), log_.begin() + (w.file_offset - kLogOffset));
        return bytes->size();
    }

    Result<LogReplayPlan> plan(uint64_t file_size = kFileSize, LogReplayOptions options = {}) {
        return plan_log_replay(header_, log_, file_size, options);
    }

    Header header_;
    Bytes log_;
};

TEST_F(VhdxLogReplay, ZeroLogGuidMeansNothingToReplay) {
    header_.log_guid = Guid{};
    put_entry(0, 1, 0, {{0x200000, sector_of(1)}});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_FALSE(p->active);
    EXPECT_TRUE(p->writes.empty());
    EXPECT_EQ(p->extend_file_to, kFileSize);
}

TEST_F(VhdxLogReplay, SingleEntry) {
    put_entry(0, 1, 0, {{0x200000, sector_of(0xAB)}}, {}, test_guid(1), 8 * kMiB, 24 * kMiB);
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_TRUE(p->active);
    EXPECT_EQ(p->entry_count, 1u);
    ASSERT_EQ(p->writes.size(), 1u);
    EXPECT_EQ(p->writes[0].file_offset, 0x200000u);
    EXPECT_FALSE(p->writes[0].is_zero());
    EXPECT_EQ(p->writes[0].data, sector_of(0xAB));
    EXPECT_EQ(p->head_sequence_number, 1u);
    EXPECT_EQ(p->next_sequence_number, 2u);
    EXPECT_EQ(p->tail_position, 0u);
    EXPECT_EQ(p->head_position, 0u);
    EXPECT_EQ(p->next_write_position, 0x2000u);
    EXPECT_EQ(p->flushed_file_offset, 8 * kMiB);
    EXPECT_EQ(p->last_file_offset, 24 * kMiB);
    EXPECT_EQ(p->extend_file_to, 24 * kMiB);  // the spec's MUST (QEMU skips aligned values)
}

TEST_F(VhdxLogReplay, SequenceInOrderLaterWritesWin) {
    uint64_t pos = 0x10000;
    pos += put_entry(pos, 7, 0x10000, {{0x200000, sector_of(1)}});
    pos += put_entry(pos, 8, 0x10000, {{0x201000, sector_of(2)}}, {{0x300000, 0x2000}});
    put_entry(pos, 9, 0x10000, {{0x200000, sector_of(3)}});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->entry_count, 3u);
    EXPECT_EQ(p->tail_position, 0x10000u);
    EXPECT_EQ(p->head_sequence_number, 9u);
    ASSERT_EQ(p->writes.size(), 4u);
    EXPECT_EQ(p->writes[0].data, sector_of(1));
    EXPECT_EQ(p->writes[1].file_offset, 0x201000u);
    EXPECT_TRUE(p->writes[2].is_zero());
    EXPECT_EQ(p->writes[2].file_offset, 0x300000u);
    EXPECT_EQ(p->writes[2].zero_length, 0x2000u);
    EXPECT_EQ(p->writes[3].file_offset, 0x200000u);
    EXPECT_EQ(p->writes[3].data, sector_of(3));
}

TEST_F(VhdxLogReplay, HeadTailSkipsAppliedEntries) {
    uint64_t pos = 0;
    pos += put_entry(pos, 1, 0, {{0x200000, sector_of(1)}});
    const uint64_t second = pos;
    pos += put_entry(pos, 2, 0, {{0x201000, sector_of(2)}});
    put_entry(pos, 3, static_cast<uint32_t>(second), {{0x202000, sector_of(3)}});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->entry_count, 2u);
    EXPECT_EQ(p->tail_position, second);
    ASSERT_EQ(p->writes.size(), 2u);
    EXPECT_EQ(p->writes[0].file_offset, 0x201000u);
    EXPECT_EQ(p->writes[1].file_offset, 0x202000u);
}

TEST_F(VhdxLogReplay, WrappedEntryIsReassembled) {
    // A 3-sector entry starting one sector before the end wraps to the start.
    const uint64_t start = kLogLength - 4096;
    const uint64_t len = put_entry(start, 5, static_cast<uint32_t>(start),
                                   {{0x200000, sector_of(0x11)}, {0x205000, sector_of(0x22)}});
    ASSERT_EQ(len, 3 * 4096u);
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->tail_position, start);
    EXPECT_EQ(p->next_write_position, 2 * 4096u);
    ASSERT_EQ(p->writes.size(), 2u);
    EXPECT_EQ(p->writes[1].data, sector_of(0x22));
}

TEST_F(VhdxLogReplay, SequenceContinuesAcrossTheWrap) {
    const uint64_t first = kLogLength - 0x2000;
    put_entry(first, 40, static_cast<uint32_t>(first),
              {{0x200000, sector_of(1)}});  // fills the end
    put_entry(0, 41, static_cast<uint32_t>(first), {{0x201000, sector_of(2)}});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->entry_count, 2u);
    EXPECT_EQ(p->tail_position, first);
    EXPECT_EQ(p->head_position, 0u);
    EXPECT_EQ(p->head_sequence_number, 41u);
}

TEST_F(VhdxLogReplay, NewestSequenceWins) {
    put_entry(0, 100, 0, {{0x200000, sector_of(1)}});              // stale, older
    put_entry(0x40000, 200, 0x40000, {{0x200000, sector_of(2)}});  // newest
    put_entry(0x80000, 150, 0x80000, {{0x200000, sector_of(3)}});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->head_sequence_number, 200u);
    ASSERT_EQ(p->writes.size(), 1u);
    EXPECT_EQ(p->writes[0].data, sector_of(2));
}

TEST_F(VhdxLogReplay, BadCrcEndsTheSequence) {
    uint64_t pos = 0;
    pos += put_entry(pos, 1, 0, {{0x200000, sector_of(1)}});
    const uint64_t third = pos + put_entry(pos, 2, 0, {{0x201000, sector_of(2)}});
    put_entry(third, 3, 0, {{0x202000, sector_of(3)}});
    log_[third + 4096 + 100] ^= std::byte{1};  // corrupt entry 3's data sector
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->head_sequence_number, 2u);
    EXPECT_EQ(p->writes.size(), 2u);
}

TEST_F(VhdxLogReplay, BadCrcOnlyEntryMeansNoSequence) {
    put_entry(0, 1, 0, {{0x200000, sector_of(1)}});
    log_[4096 + 100] ^= std::byte{1};
    EXPECT_ERROR(
        plan(), ErrorKind::kCorrupt,
        "log guid " + test_guid(1).to_string() + " is set but the log holds no valid sequence");
    auto tolerated = plan(kFileSize, {.tolerate_missing_sequence = true});
    ASSERT_OK(tolerated);
    EXPECT_FALSE(tolerated->active);
}

TEST_F(VhdxLogReplay, SequenceGapBreaksTheChain) {
    uint64_t pos = 0;
    pos += put_entry(pos, 1, 0, {{0x200000, sector_of(1)}});
    put_entry(pos, 3, 0, {{0x201000, sector_of(3)}});  // 2 is missing; its tail is outside its run
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->head_sequence_number, 1u);
    ASSERT_EQ(p->writes.size(), 1u);
    EXPECT_EQ(p->writes[0].file_offset, 0x200000u);
}

TEST_F(VhdxLogReplay, HeadTailOutsideSequenceIsInvalid) {
    put_entry(0x5000, 4, 0x1000, {{0x200000, sector_of(1)}});
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "holds no valid sequence");
}

TEST_F(VhdxLogReplay, GuidMismatchIsInvalid) {
    put_entry(0, 1, 0, {{0x200000, sector_of(1)}}, {}, test_guid(2));
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "holds no valid sequence");
}

TEST_F(VhdxLogReplay, DescriptorOnlyEntryReplaysNothing) {
    put_entry(0, 1, 0, {});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_TRUE(p->active);
    EXPECT_TRUE(p->writes.empty());
}

TEST_F(VhdxLogReplay, HostileTargetsMakeEntriesInvalid) {
    put_entry(0, 1, 0, {{0x10000, sector_of(1)}});  // header 1
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "holds no valid sequence");
    log_.assign(kLogLength, std::byte{0});
    put_entry(0, 1, 0, {{kLogOffset + 0x3000, sector_of(1)}});  // the log itself
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "holds no valid sequence");
    log_.assign(kLogLength, std::byte{0});
    put_entry(0, 1, 0, {}, {{kMaxReplayTargetEnd, 0x1000}});
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "holds no valid sequence");
    log_.assign(kLogLength, std::byte{0});
    put_entry(0, 1, 0, {}, {{0x200000, UINT64_MAX - 0xFFF}});
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "holds no valid sequence");
    log_.assign(kLogLength, std::byte{0});
    put_entry(0, 1, 0, {{kRegionTable1Offset, sector_of(1)}});  // region tables may be logged
    EXPECT_TRUE(plan().ok());
}

TEST_F(VhdxLogReplay, TruncatedFileRefused) {
    put_entry(0, 1, 0, {{0x200000, sector_of(1)}}, {}, test_guid(1), 32 * kMiB, 32 * kMiB);
    EXPECT_ERROR(plan(16 * kMiB), ErrorKind::kCorrupt,
                 "file size 0x1000000 is less than the log's flushed file offset 0x2000000");
    auto p = plan(40 * kMiB);
    ASSERT_OK(p);
    EXPECT_EQ(p->extend_file_to, 40 * kMiB);
}

TEST_F(VhdxLogReplay, WholeRingSequenceTerminates) {
    // 256 one-sector entries fill the ring exactly; the scan must stop.
    for (uint64_t i = 0; i < kLogLength / 4096; ++i)
        put_entry(i * 4096, 1 + i, 0, {});
    auto p = plan();
    ASSERT_OK(p);
    EXPECT_EQ(p->entry_count, 256u);
    EXPECT_EQ(p->head_sequence_number, 256u);
    EXPECT_EQ(p->next_write_position, 0u);
}

TEST_F(VhdxLogReplay, SuppliedBytesAndLengthChecked) {
    EXPECT_ERROR(plan_log_replay(header_, ByteSpan(log_).first(4096), kFileSize),
                 ErrorKind::kInvalidArgument, "log of 0x100000 bytes but 4096 bytes supplied");
    header_.log_length = 0;
    EXPECT_ERROR(plan(), ErrorKind::kCorrupt, "log length 0x0 cannot hold log entries");
}

}  // namespace
}  // namespace coblock::vhdx
