// VHDX region tables: parse -> encode -> parse, the choice between the two
// copies, classification of the regions and the extent check against the
// header's log.
#include "formats/vhdx/extents.h"
#include "formats/vhdx/header.h"
#include "formats/vhdx/region_table.h"
#include "fuzz/fuzz.h"
#include "fuzz/vhdx_util.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint8_t flags = r.take<uint8_t>();
    vhdx::Header header;
    header.log_offset = uint64_t{r.take<uint16_t>()} * vhdx::kMiB;
    header.log_length = static_cast<uint32_t>(uint64_t{r.take<uint8_t>()} * vhdx::kMiB);
    uint64_t file_size = uint64_t{r.take<uint32_t>()} * 4096;
    ByteSpan rest = r.rest();

    auto copy1 = fuzz::sized(rest, vhdx::kRegionTableSize);
    auto copy2 = (flags & 4) ? copy1
                             : fuzz::sized(rest.size() > vhdx::kRegionTableSize
                                               ? rest.subspan(vhdx::kRegionTableSize)
                                               : ByteSpan{},
                                           vhdx::kRegionTableSize);
    fuzz::maybe_fix_checksum(copy1, vhdx::kRegionTableSize, flags & 1);
    fuzz::maybe_fix_checksum(copy2, vhdx::kRegionTableSize, flags & 2);

    if (auto table = vhdx::parse_region_table(copy1); table.ok()) {
        std::vector<std::byte> out(vhdx::kRegionTableSize);
        FUZZ_CHECK(vhdx::encode_region_table(*table, out).ok());
        auto again = vhdx::parse_region_table(out);
        FUZZ_CHECK(again.ok() && *again == *table);
    }

    auto choice = vhdx::select_region_table(copy1, copy2);
    if (!choice.ok()) return 0;
    auto regions = vhdx::classify_regions(choice->table);
    if (!regions.ok()) return 0;
    auto extents = vhdx::image_extents(header, *regions);
    (void)vhdx::check_extents(extents, file_size);
    return 0;
}
