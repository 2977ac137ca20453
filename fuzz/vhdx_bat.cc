// VHDX BAT: geometry from the input, entry decode/encode, per-entry and
// whole-table checks, and virtual offset lookups.
#include <vector>

#include "formats/vhdx/bat.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint8_t shape = r.take<uint8_t>();
    uint64_t block_size = vhdx::kMiB << (shape % 9);    // up to 256 MiB, the limit
    if (shape & 0x80) block_size += r.take<uint8_t>();  // sometimes invalid
    uint64_t sector = (shape & 0x10) ? 4096 : 512;
    bool has_parent = shape & 0x20;
    uint64_t virtual_size = r.take<uint32_t>() * sector;
    uint64_t file_size = uint64_t{r.take<uint16_t>()} * vhdx::kMiB;
    uint64_t probe_offset = r.take<uint64_t>();
    ByteSpan table = r.rest();

    auto g = vhdx::compute_bat_geometry(block_size, sector, virtual_size, has_parent);
    if (!g.ok()) return 0;
    (void)vhdx::check_bat_region_length(*g, table.size());
    for (uint64_t i = 0; i < table.size() / 8; ++i) {
        auto entry = vhdx::read_bat_entry(table, i);
        FUZZ_CHECK(entry.ok());
        uint64_t raw = load_le<uint64_t>(table.data() + 8 * i);
        FUZZ_CHECK(vhdx::encode_bat_entry(*entry) == raw);
        if (i < g->entry_count) (void)vhdx::check_bat_entry(*g, i, *entry);
        std::vector<std::byte> copy(8);
        FUZZ_CHECK(vhdx::write_bat_entry(copy, 0, *entry).ok());
        FUZZ_CHECK(load_le<uint64_t>(copy.data()) == raw);
    }
    FUZZ_CHECK(!vhdx::read_bat_entry(table, table.size() / 8).ok());
    if (table.size() >= g->table_bytes()) {
        std::vector<vhdx::Extent> fixed{{"header section", 0, vhdx::kMiB}};
        (void)vhdx::check_bat(*g, table, file_size, fixed);
    }
    for (uint64_t off : {probe_offset, probe_offset % (virtual_size + 1), uint64_t{0}}) {
        auto loc = vhdx::locate_virtual_offset(*g, off);
        if (!loc.ok()) continue;
        FUZZ_CHECK(loc->bat_index < g->entry_count);
        FUZZ_CHECK(loc->bytes_left_in_block >= 1 && loc->bytes_left_in_block <= block_size);
        FUZZ_CHECK(vhdx::payload_bat_index(*g, loc->block) == loc->bat_index);
        FUZZ_CHECK(!vhdx::is_sector_bitmap_index(*g, loc->bat_index));
        FUZZ_CHECK(vhdx::block_of_bat_index(*g, loc->bat_index) == loc->block);
    }
    return 0;
}
