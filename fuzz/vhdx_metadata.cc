// VHDX metadata region: the metadata table (parse -> encode -> parse), the
// item read plan, each system item decoder, and the whole image metadata
// (parse -> encode_metadata_region -> parse). The input is compressed: a
// prefix becomes the 64 KiB table (zero-padded), the rest the items at 64 KiB.
#include <algorithm>
#include <vector>

#include "formats/vhdx/metadata.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    size_t table_len = r.take<uint16_t>();
    uint64_t extra_region = uint64_t{r.take<uint16_t>()} * 4096;
    ByteSpan table_bytes = r.take_bytes(std::min(table_len, size_t{vhdx::kMetadataTableSize}));
    ByteSpan items = r.rest();

    // Each system item decoder on the raw item bytes.
    (void)vhdx::parse_file_parameters(items);
    (void)vhdx::parse_virtual_disk_size(items);
    (void)vhdx::parse_virtual_disk_id(items);
    (void)vhdx::parse_sector_size(items, true);
    (void)vhdx::parse_sector_size(items, false);

    std::vector<std::byte> region(vhdx::kMetadataTableSize + items.size());
    std::copy(table_bytes.begin(), table_bytes.end(), region.begin());
    std::copy(items.begin(), items.end(), region.begin() + vhdx::kMetadataTableSize);
    const uint64_t region_length = region.size() + extra_region;

    auto table = vhdx::parse_metadata_table(region, region_length);
    if (!table.ok()) return 0;
    std::vector<std::byte> out(vhdx::kMetadataTableSize);
    FUZZ_CHECK(vhdx::encode_metadata_table(*table, out).ok());
    auto again = vhdx::parse_metadata_table(out, region_length);
    FUZZ_CHECK(again.ok() && *again == *table);

    (void)vhdx::plan_metadata_item_reads(*table, vhdx::kMiB);
    auto metadata = vhdx::parse_image_metadata_from_region(*table, region);
    if (!metadata.ok()) return 0;
    auto encoded = vhdx::encode_metadata_region(*metadata);
    if (!encoded.ok()) return 0;  // e.g. a parent locator the encoder refuses
    const uint64_t encoded_length = std::max<uint64_t>(encoded->size(), vhdx::kMiB);
    auto table2 = vhdx::parse_metadata_table(*encoded, encoded_length);
    FUZZ_CHECK(table2.ok());
    auto metadata2 = vhdx::parse_image_metadata_from_region(*table2, *encoded);
    FUZZ_CHECK(metadata2.ok());
    FUZZ_CHECK(*metadata2 == *metadata);
    return 0;
}
