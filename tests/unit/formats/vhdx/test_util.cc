// Helpers shared by the VHDX format tests.
#include "tests/unit/formats/vhdx/test_util.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace coblock::vhdx::testing {

Bytes materialize(const ImageLayout& layout) {
    Bytes file(layout.file_size);
    for (const FileWrite& w : layout.writes) {
        if (w.offset + w.bytes.size() > file.size()) file.resize(w.offset + w.bytes.size());
        std::copy(w.bytes.begin(), w.bytes.end(), file.begin() + w.offset);
    }
    return file;
}

Result<ParsedImage> parse_image(const Bytes& file) {
    ParsedImage p;
    const ByteSpan all(file);
    if (file.size() < kHeaderSectionReadSize) return invalid_argument("vhdx: file too short");
    ASSIGN_OR_RETURN(p.identifier, parse_file_identifier(all.first(kFileIdentifierSize)));
    ASSIGN_OR_RETURN(p.headers, select_header(all.subspan(kHeader1Offset, kHeaderSize),
                                              all.subspan(kHeader2Offset, kHeaderSize)));
    if (!p.headers.current.log_guid.is_zero())
        return unsupported_error("vhdx: test helper does not replay logs");
    ASSIGN_OR_RETURN(RegionTableChoice choice,
                     select_region_table(all.subspan(kRegionTable1Offset, kRegionTableSize),
                                         all.subspan(kRegionTable2Offset, kRegionTableSize)));
    ASSIGN_OR_RETURN(p.regions, classify_regions(choice.table));
    const std::vector<Extent> extents = image_extents(p.headers.current, p.regions);
    TRY(check_extents(extents, file.size()));
    const uint64_t meta_off = p.regions.metadata.file_offset;
    ASSIGN_OR_RETURN(
        p.metadata_table,
        parse_metadata_table(all.subspan(meta_off, kMetadataTableSize), p.regions.metadata.length));
    ASSIGN_OR_RETURN(std::vector<MetadataItemRead> reads,
                     plan_metadata_item_reads(p.metadata_table, meta_off));
    std::vector<MetadataItemBytes> items;
    for (const MetadataItemRead& r : reads)
        items.push_back({r.item_id, all.subspan(r.file_offset, r.length)});
    ASSIGN_OR_RETURN(p.metadata, parse_image_metadata(p.metadata_table, items));
    const FileParameters& fp = p.metadata.file_parameters;
    ASSIGN_OR_RETURN(p.geometry, compute_bat_geometry(fp.block_size, p.metadata.logical_sector_size,
                                                      p.metadata.virtual_disk_size, fp.has_parent));
    TRY(check_bat_region_length(p.geometry, p.regions.bat.length));
    ByteSpan bat = all.subspan(p.regions.bat.file_offset, p.geometry.table_bytes());
    p.bat.assign(bat.begin(), bat.end());
    TRY(check_bat(p.geometry, bat, file.size(), extents));
    return p;
}

Bytes read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Bytes out(chars.size());
    std::memcpy(out.data(), chars.data(), chars.size());
    return out;
}

bool write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    return static_cast<bool>(out);
}

}  // namespace coblock::vhdx::testing
