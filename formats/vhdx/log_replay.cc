// VHDX log replay planner. Pure. Implements spec vhdx.md §11.4, §11.5, §11.8.
#include "formats/vhdx/log_replay.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

namespace coblock::vhdx {
namespace {

// What the search remembers about a valid entry.
struct EntrySummary {
    uint64_t sequence_number;
    uint64_t length;
    uint64_t tail;
};

class LogScanner {
  public:
    LogScanner(const Header& header, ByteSpan log) : header_(header), log_(log) {
        status_.assign(header.log_length / kLogSectorSize, kUnknown);
    }

    // The entry starting at log offset `pos`, if valid.
    std::optional<EntrySummary> at(uint64_t pos) {
        const uint64_t sector = pos / kLogSectorSize;
        if (status_[sector] == kInvalid) return std::nullopt;
        if (status_[sector] == kValid) return summaries_.at(pos);
        Result<LogEntry> entry = parse_at(pos);
        if (!entry.ok()) {
            status_[sector] = kInvalid;
            return std::nullopt;
        }
        const EntrySummary s{entry->header.sequence_number, entry->header.entry_length,
                             entry->header.tail};
        status_[sector] = kValid;
        summaries_.emplace(pos, s);
        return s;
    }

    // Parses the entry at `pos` again (only for the entries replayed).
    Result<LogEntry> parse_at(uint64_t pos) {
        const uint64_t length = header_.log_length;
        ByteSpan first = log_.subspan(pos, kLogSectorSize);
        ASSIGN_OR_RETURN(LogEntryHeader h, parse_log_entry_header(first, length));
        // The entry may wrap from the end of the ring to its start.
        buffer_.resize(h.entry_length);
        const uint64_t before_wrap = std::min<uint64_t>(h.entry_length, length - pos);
        std::copy_n(log_.begin() + pos, before_wrap, buffer_.begin());
        std::copy_n(log_.begin(), h.entry_length - before_wrap, buffer_.begin() + before_wrap);
        ASSIGN_OR_RETURN(LogEntry entry, parse_log_entry(buffer_, header_.log_guid, length));
        TRY(check_targets(entry));
        return entry;
    }

  private:
    enum : uint8_t { kUnknown, kInvalid, kValid };

    Status check_targets(const LogEntry& entry) const {
        for (const LogDescriptor& d : entry.descriptors) {
            const uint64_t length =
                d.kind == LogDescriptor::Kind::kData ? kLogSectorSize : d.zero_length;
            uint64_t end;
            if (!checked_add(d.file_offset, length, &end) || end > kMaxReplayTargetEnd)
                return corrupt_error("vhdx: log descriptor target " + hex(d.file_offset) + "+" +
                                     hex(length) + " lies beyond " + hex(kMaxReplayTargetEnd));
            if (length == 0) continue;
            if (d.file_offset < kMinReplayTarget)
                return corrupt_error("vhdx: log descriptor target " + hex(d.file_offset) +
                                     " lies in the file identifier or headers");
            if (d.file_offset < header_.log_offset + header_.log_length && header_.log_offset < end)
                return corrupt_error("vhdx: log descriptor target " + hex(d.file_offset) + "+" +
                                     hex(length) + " overlaps the log");
        }
        return ok_status();
    }

    const Header& header_;
    ByteSpan log_;
    std::vector<uint8_t> status_;
    std::unordered_map<uint64_t, EntrySummary> summaries_;
    std::vector<std::byte> buffer_;
};

struct Sequence {
    std::vector<uint64_t> positions;
    std::vector<EntrySummary> entries;
};

}  // namespace

Result<LogReplayPlan> plan_log_replay(const Header& header, ByteSpan log_region, uint64_t file_size,
                                      const LogReplayOptions& options) {
    LogReplayPlan plan;
    plan.extend_file_to = file_size;
    if (header.log_guid.is_zero()) return plan;
    const uint64_t length = header.log_length;
    if (length == 0 || length % kLogSectorSize != 0)
        return corrupt_error("vhdx: log length " + hex(length) + " cannot hold log entries");
    if (log_region.size() < length)
        return invalid_argument("vhdx: log of " + hex(length) + " bytes but " +
                                std::to_string(log_region.size()) + " bytes supplied");
    log_region = log_region.first(length);

    LogScanner scanner(header, log_region);
    std::optional<Sequence> best;
    uint64_t cur_tail = 0;
    uint64_t old_tail = 0;
    for (;;) {
        Sequence seq;
        uint64_t pos = cur_tail;
        for (;;) {
            std::optional<EntrySummary> e = scanner.at(pos);
            if (!e) break;
            if (!seq.entries.empty() &&
                e->sequence_number != seq.entries.back().sequence_number + 1)
                break;
            seq.positions.push_back(pos);
            seq.entries.push_back(*e);
            pos = (pos + e->length) % length;
            if (pos == cur_tail) break;  // the sequence filled the ring
        }
        bool valid = false;
        if (!seq.entries.empty()) {
            // The head names its tail; keep only tail..head.
            auto tail =
                std::find(seq.positions.begin(), seq.positions.end(), seq.entries.back().tail);
            if (tail != seq.positions.end()) {
                valid = true;
                const auto skip = tail - seq.positions.begin();
                seq.positions.erase(seq.positions.begin(), tail);
                seq.entries.erase(seq.entries.begin(), seq.entries.begin() + skip);
            }
        }
        if (valid &&
            (!best || seq.entries.back().sequence_number > best->entries.back().sequence_number))
            best = seq;
        cur_tail = valid ? pos : (cur_tail + kLogSectorSize) % length;
        // Positions only move forward within one pass; a step back means the
        // scan wrapped and every start position has been tried.
        if (cur_tail <= old_tail) break;
        old_tail = cur_tail;
    }

    if (!best) {
        if (options.tolerate_missing_sequence) return plan;
        return corrupt_error("vhdx: log guid " + header.log_guid.to_string() +
                             " is set but the log holds no valid sequence");
    }
    plan.active = true;
    plan.entry_count = best->entries.size();
    plan.tail_position = best->positions.front();
    plan.head_position = best->positions.back();
    plan.next_write_position = (plan.head_position + best->entries.back().length) % length;
    plan.head_sequence_number = best->entries.back().sequence_number;
    plan.next_sequence_number = plan.head_sequence_number + 1;
    for (uint64_t pos : best->positions) {
        ASSIGN_OR_RETURN(LogEntry entry, scanner.parse_at(pos));
        if (pos == plan.head_position) {
            plan.flushed_file_offset = entry.header.flushed_file_offset;
            plan.last_file_offset = entry.header.last_file_offset;
        }
        for (LogDescriptor& d : entry.descriptors) {
            if (d.kind == LogDescriptor::Kind::kData)
                plan.writes.push_back({d.file_offset, 0, std::move(d.data)});
            else if (d.zero_length != 0)
                plan.writes.push_back({d.file_offset, d.zero_length, {}});
        }
    }
    if (file_size < plan.flushed_file_offset)
        return corrupt_error("vhdx: file size " + hex(file_size) +
                             " is less than the log's flushed file offset " +
                             hex(plan.flushed_file_offset) + "; the file was truncated");
    plan.extend_file_to = std::max(file_size, plan.last_file_offset);
    return plan;
}

}  // namespace coblock::vhdx
