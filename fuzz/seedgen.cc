// Seed generator: writes the seed corpora of every harness from our own
// encoders and layout builders (small valid structures of every variant,
// plus edge cases), and wraps an existing image file (e.g. one made by
// qemu-img and written by qemu-io) as a whole-driver harness input.
//   seedgen OUTDIR                    seeds into OUTDIR/<target>/seed-*
//   seedgen wrap IMAGE OUTFILE        IMAGE as a driver harness input
// Run by fuzz/make_corpus.sh; not part of any fuzz build.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow/qcow_create.h"
#include "formats/qcow/qcow_tables.h"
#include "formats/qcow2/l2_entry.h"
#include "formats/qcow2/layout.h"
#include "formats/qcow2/refcount.h"
#include "formats/qcow2/snapshot.h"
#include "formats/vhdx/layout.h"
#include "formats/vhdx/log.h"
#include "formats/vhdx/parent_locator.h"

using namespace coblock;
namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;

namespace {

fs::path g_out;
int g_written = 0;

void put(const std::string& target, const std::string& name, const Bytes& bytes) {
    fs::create_directories(g_out / target);
    std::ofstream out(g_out / target / ("seed-" + name), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    ++g_written;
}

template <class T>
void le(Bytes& b, T v) {
    for (size_t i = 0; i < sizeof(T); ++i)
        b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
void append(Bytes& b, const Bytes& more) {
    b.insert(b.end(), more.begin(), more.end());
}

template <class T>
T must(Result<T> r, const char* what) {
    if (!r.ok()) {
        std::fprintf(stderr, "seedgen: %s: %s\n", what, r.error().message.c_str());
        std::exit(1);
    }
    return std::move(*r);
}

// A file image from layout writes (zeros elsewhere).
template <class W>
Bytes materialise(const std::vector<W>& writes, uint64_t file_size) {
    Bytes file(file_size);
    for (const auto& w : writes) {
        if (file.size() < w.offset + w.bytes.size()) file.resize(w.offset + w.bytes.size());
        std::copy(w.bytes.begin(), w.bytes.end(), file.begin() + w.offset);
    }
    return file;
}

Bytes trim_zeros(Bytes b) {
    while (!b.empty() && b.back() == std::byte{0})
        b.pop_back();
    return b;
}

// ---- whole-driver input (see driver_harness.cc for the layout) ----------------

struct Op {
    uint8_t kind, fill;
    uint32_t length;
    uint64_t offset;
};

// Reads, writes across clusters/blocks, zero writes, discards, flushes.
const std::vector<Op> kStandardOps = {
    {0, 0, 65536, 0},
    {1, 0xaa, 4096, 0},
    {1, 0x55, 70000, 65000},
    {0, 0, 131072, 0},
    {2, 1, 8192, 4096},
    {3, 0, 65536, 131072},
    {4, 0, 0, 0},
    {1, 0x11, 512, 1 << 20},
    {2, 0, 1 << 20, 2 << 20},
    {0, 0, 1 << 20, 1 << 20},
    {4, 0, 0, 0},
};

Bytes driver_input(const Bytes& file, uint8_t flags, const std::vector<Op>& ops) {
    Bytes in;
    le<uint8_t>(in, flags);
    le<uint8_t>(in, static_cast<uint8_t>(ops.size()));
    for (const Op& op : ops) {
        le<uint8_t>(in, op.kind);
        le<uint8_t>(in, op.fill);
        le<uint16_t>(in, 0);
        le<uint32_t>(in, op.length);
        le<uint64_t>(in, op.offset);
    }
    // Runs of non-zero 512-byte sectors, at most 32 KiB per segment.
    constexpr size_t kSector = 512, kMaxSegment = 32768;
    auto zero_sector = [&](size_t s) {
        for (size_t i = s; i < std::min(s + kSector, file.size()); ++i)
            if (file[i] != std::byte{0}) return false;
        return true;
    };
    size_t pos = 0;
    while (pos < file.size()) {
        if (zero_sector(pos)) {
            pos += kSector;
            continue;
        }
        size_t end = pos;
        while (end < file.size() && end - pos < kMaxSegment && !zero_sector(end))
            end += kSector;
        end = std::min(end, file.size());
        while (end > pos && file[end - 1] == std::byte{0})
            --end;
        le<uint32_t>(in, static_cast<uint32_t>(pos));
        le<uint16_t>(in, static_cast<uint16_t>(end - pos));
        in.insert(in.end(), file.begin() + pos, file.begin() + end);
        pos += ((end - pos + kSector - 1) / kSector) * kSector;
    }
    // The file's last byte, so the file keeps its size.
    if (!file.empty() && file.back() == std::byte{0}) {
        le<uint32_t>(in, static_cast<uint32_t>(file.size() - 1));
        le<uint16_t>(in, 1);
        in.push_back(std::byte{0});
    }
    return in;
}

// ---- qcow ------------------------------------------------------------------

void qcow_seeds() {
    struct V {
        const char* name;
        uint64_t size;
        const char* backing;
    };
    for (V v : {V{"1m", 1 << 20, ""}, V{"64m", 64 << 20, ""}, V{"backing", 4 << 20, "base.img"},
                V{"odd-size", 1000000, ""}, V{"vvfat", 1 << 20, "fat:"}}) {
        qcow::CreateOptions o;
        o.size = v.size;
        o.backing_file = v.backing;
        auto layout = must(qcow::build_create_layout(o), "qcow layout");
        Bytes file = materialise(layout.writes, layout.file_size);
        put("qcow_header", v.name, trim_zeros(file));
        put("driver_qcow", v.name, driver_input(file, 0, kStandardOps));
        put("driver_qcow", std::string(v.name) + "-ro", driver_input(file, 1, {{0, 0, 65536, 0}}));

        // Table seeds: the geometry prefix and an L1 table with entries.
        const auto& g = layout.geometry;
        Bytes t;
        le<uint8_t>(t, static_cast<uint8_t>(g.cluster_bits));
        le<uint8_t>(t, static_cast<uint8_t>(g.l2_bits));
        le<uint64_t>(t, g.size);
        le<uint64_t>(t, 4096);
        std::vector<uint64_t> l1(g.l1_size);
        for (size_t i = 0; i < l1.size(); ++i)
            l1[i] = i % 2 ? 0 : (i + 1) * g.cluster_size();
        append(t, qcow::encode_table(l1));
        std::vector<uint64_t> l2(g.l2_entries());
        l2[0] =
            must(qcow::encode_l2_entry(g, {qcow::ClusterType::kNormal, 8 * g.cluster_size(), 0}),
                 "qcow l2");
        l2[1] = must(qcow::encode_l2_entry(g, {qcow::ClusterType::kCompressed, 12345, 300}),
                     "qcow compressed");
        append(t, qcow::encode_table(l2));
        put("qcow_tables", v.name, t);
    }
}

// ---- qcow2 -----------------------------------------------------------------

void qcow2_seeds() {
    struct V {
        const char* name;
        qcow2::CreateOptions o;
    };
    std::vector<V> variants;
    auto add = [&](const char* name, auto tweak) {
        qcow2::CreateOptions o;
        o.size = 1 << 20;
        o.cluster_bits = 12;
        tweak(o);
        variants.push_back({name, o});
    };
    add("v3-4k", [](auto&) {});
    add("v3-512", [](auto& o) { o.cluster_bits = 9; });
    add("v3-64k", [](auto& o) { o.cluster_bits = 16; });
    add("v2", [](auto& o) { o.version = 2; });
    add("extl2", [](auto& o) {
        o.cluster_bits = 14;
        o.extended_l2 = true;
    });
    add("refcount1", [](auto& o) { o.refcount_order = 0; });
    add("refcount64", [](auto& o) { o.refcount_order = 6; });
    add("lazy", [](auto& o) { o.lazy_refcounts = true; });
    add("zstd", [](auto& o) {
        o.cluster_bits = 13;
        o.compression_type = qcow2::kCompressionZstd;
    });
    add("backing", [](auto& o) {
        o.backing_file = "base.qcow2";
        o.backing_format = "qcow2";
    });
    add("datafile", [](auto& o) {
        o.data_file = "data.raw";
        o.data_file_raw = true;
    });
    add("big", [](auto& o) {
        o.size = 1ull << 40;
        o.cluster_bits = 16;
    });
    for (const V& v : variants) {
        auto layout = must(qcow2::build_initial_layout(v.o), v.name);
        Bytes file = materialise(layout.writes, layout.file_size);
        const size_t cluster = size_t{1} << v.o.cluster_bits;
        Bytes cluster0(file.begin(), file.begin() + std::min(cluster, file.size()));
        put("qcow2_header", v.name, trim_zeros(cluster0));
        if (!v.o.data_file) {
            put("driver_qcow2", v.name, driver_input(file, 0, kStandardOps));
            put("driver_qcow2", std::string(v.name) + "-check",
                driver_input(file, 4, {{1, 0x77, 8192, 0}, {4, 0, 0, 0}}));
        }
    }

    // L2 tables: every kind of entry, standard and extended.
    for (uint32_t cb : {9u, 12u, 16u, 21u}) {
        for (bool ext : {false, true}) {
            if (ext && cb < 14) continue;
            auto g = must(qcow2::make_geometry(cb, ext, 4), "qcow2 geometry");
            Bytes t;
            le<uint8_t>(t, (ext ? 1 : 0) | 2);
            le<uint8_t>(t, static_cast<uint8_t>(cb - 9));
            std::vector<qcow2::L2Entry> entries(6);
            entries[1].host_offset = 5ull << cb;
            entries[1].copied = true;
            entries[2].zero = !ext;
            entries[3] = must(qcow2::make_compressed_entry(3ull << cb | 100, 700, g), "compressed");
            entries[4].host_offset = 7ull << cb;
            entries[4].bitmap = ext ? 0x0000ffff00000000ull | 0xff : 0;
            entries[5].bitmap = ext ? 0xffffffff00000000ull : 0;
            for (const auto& e : entries) {
                uint64_t word = must(qcow2::encode_l2_entry(e, g), "l2 encode");
                for (int i = 7; i >= 0; --i)
                    t.push_back(static_cast<std::byte>(word >> (8 * i)));
                if (ext)
                    for (int i = 7; i >= 0; --i)
                        t.push_back(static_cast<std::byte>(e.bitmap >> (8 * i)));
            }
            std::string name = "cb" + std::to_string(cb) + (ext ? "-ext" : "");
            put("qcow2_l2", name, t);

            Bytes c;
            le<uint8_t>(c, static_cast<uint8_t>(cb - 9));
            for (uint64_t len : {1ull, 511ull, 512ull, 4000ull, (1ull << cb) + 1}) {
                le<uint64_t>(c, (9ull << cb) + 300);
                le<uint32_t>(c, static_cast<uint32_t>(len));
            }
            put("qcow2_compressed", name, c);
        }
    }

    // Refcount blocks of every width.
    for (uint32_t order = 0; order <= 6; ++order) {
        Bytes block(512);
        for (uint64_t i = 0; i < 16; ++i)
            (void)qcow2::set_refcount(block, i, order,
                                      std::min<uint64_t>(i, qcow2::refcount_max_for_order(order)));
        Bytes t;
        le<uint8_t>(t, static_cast<uint8_t>(order));
        le<uint8_t>(t, 3);
        le<uint16_t>(t, 5);
        le<uint64_t>(t, 1);
        append(t, block);
        put("qcow2_refcount", "order" + std::to_string(order), t);
    }

    // Snapshot tables.
    std::vector<qcow2::SnapshotEntry> snaps(3);
    snaps[0].l1_table_offset = 0x30000;
    snaps[0].l1_size = 2;
    snaps[0].id = "1";
    snaps[0].name = "first";
    snaps[0].vm_state_size_large = 0;
    snaps[0].disk_size = 1 << 20;
    snaps[1] = snaps[0];
    snaps[1].id = "2";
    snaps[1].name = "with icount";
    snaps[1].icount = ~0ull;
    snaps[2].id = "3";
    snaps[2].name = "v2 style";
    snaps[2].unknown_extra = Bytes(5, std::byte{0x42});
    for (size_t n = 1; n <= snaps.size(); ++n) {
        Bytes t;
        le<uint8_t>(t, static_cast<uint8_t>(n));
        le<uint8_t>(t, 7);  // 64 KiB clusters
        append(t, must(qcow2::encode_snapshot_table(std::span(snaps).first(n)), "snapshots"));
        put("qcow2_snapshot", "n" + std::to_string(n), t);
    }
}

// Bitmap directory entries, big-endian as qcow2.txt lays them out (there is
// no encoder: coblock only reads bitmaps). The harness takes nb_bitmaps
// from the first two bytes (little-endian).
void be(Bytes& b, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i)
        b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}
Bytes bitmap_entry(const std::string& name, uint32_t flags, uint8_t granularity_bits,
                   const Bytes& extra = {}) {
    Bytes e;
    be(e, 0x50000, 8);  // bitmap table offset
    be(e, 1, 4);        // bitmap table size
    be(e, flags, 4);
    be(e, 1, 1);  // type: dirty tracking
    be(e, granularity_bits, 1);
    be(e, name.size(), 2);
    be(e, extra.size(), 4);
    append(e, extra);
    for (char c : name)
        e.push_back(static_cast<std::byte>(c));
    while (e.size() % 8)
        e.push_back(std::byte{0});
    return e;
}
void qcow2_bitmap_seeds() {
    const auto directory = [](uint16_t n, std::initializer_list<Bytes> entries) {
        Bytes d;
        le<uint16_t>(d, n);
        for (const Bytes& e : entries)
            append(d, e);
        return d;
    };
    put("qcow2_bitmap_directory", "empty", directory(0, {}));
    put("qcow2_bitmap_directory", "one", directory(1, {bitmap_entry("bitmap0", 2, 16)}));
    put("qcow2_bitmap_directory", "two-extra",
        directory(2, {bitmap_entry("a", 1, 16),
                      bitmap_entry("second-bitmap", 4, 9, Bytes(4, std::byte{0x5a}))}));
    put("qcow2_bitmap_directory", "long-name",
        directory(1, {bitmap_entry(std::string(1023, 'n'), 2, 31)}));
}

// ---- vhdx ------------------------------------------------------------------

vhdx::Guid guid(uint8_t seed) {
    vhdx::Guid g;
    for (size_t i = 0; i < g.bytes.size(); ++i)
        g.bytes[i] = static_cast<uint8_t>(seed + 13 * i);
    return g;
}

Bytes slice(const Bytes& file, uint64_t offset, uint64_t length) {
    Bytes out(length);
    for (uint64_t i = 0; i < length && offset + i < file.size(); ++i)
        out[i] = file[offset + i];
    return out;
}

void vhdx_seeds() {
    struct V {
        const char* name;
        vhdx::CreateOptions o;
    };
    std::vector<V> variants;
    auto add = [&](const char* name, auto tweak) {
        vhdx::CreateOptions o;
        o.virtual_disk_size = 8 << 20;
        o.file_write_guid = guid(1);
        o.data_write_guid = guid(2);
        o.virtual_disk_id = guid(3);
        o.sequence_number = 5;
        tweak(o);
        variants.push_back({name, o});
    };
    add("dynamic", [](auto&) {});
    add("dynamic-zero", [](auto& o) { o.block_state_zero = true; });
    add("fixed", [](auto& o) {
        o.type = vhdx::ImageType::kFixed;
        o.block_size = 1 << 20;
        o.virtual_disk_size = 2 << 20;
    });
    add("4k-sectors", [](auto& o) {
        o.logical_sector_size = 4096;
        o.physical_sector_size = 512;
    });
    add("differencing", [](auto& o) {
        o.type = vhdx::ImageType::kDifferencing;
        vhdx::VhdxParentLinkage link;
        link.parent_linkage = guid(9);
        link.relative_path = ".\\parent.vhdx";
        link.absolute_win32_path = "C:\\images\\parent.vhdx";
        o.parent = link;
    });
    for (const V& v : variants) {
        auto layout = must(vhdx::build_image_layout(v.o), v.name);
        Bytes file = materialise(layout.writes, layout.file_size);
        put("driver_vhdx", v.name, driver_input(file, 0, kStandardOps));
        put("driver_vhdx", std::string(v.name) + "-fixsum",
            driver_input(file, 2 | 4, kStandardOps));

        Bytes h;
        le<uint8_t>(h, 0);
        append(h, slice(file, vhdx::kHeader1Offset, vhdx::kHeaderSize));
        append(h, slice(file, vhdx::kHeader2Offset, vhdx::kHeaderSize));
        put("vhdx_header", v.name, h);

        Bytes rt;
        le<uint8_t>(rt, 0);
        le<uint16_t>(rt, static_cast<uint16_t>(layout.header.log_offset / vhdx::kMiB));
        le<uint8_t>(rt, static_cast<uint8_t>(layout.header.log_length / vhdx::kMiB));
        le<uint32_t>(rt, static_cast<uint32_t>(layout.file_size / 4096));
        append(rt, trim_zeros(slice(file, vhdx::kRegionTable1Offset, vhdx::kRegionTableSize)));
        put("vhdx_region_table", v.name, rt);

        // Metadata: table prefix, then the items that follow it at 64 KiB.
        const auto& md = layout.regions.metadata;
        Bytes table = trim_zeros(slice(file, md.file_offset, vhdx::kMetadataTableSize));
        Bytes items = trim_zeros(slice(file, md.file_offset + vhdx::kMetadataTableSize,
                                       md.length - vhdx::kMetadataTableSize));
        Bytes m;
        le<uint16_t>(m, static_cast<uint16_t>(table.size()));
        le<uint16_t>(
            m, static_cast<uint16_t>((md.length - vhdx::kMetadataTableSize - items.size()) / 4096));
        append(m, table);
        append(m, items);
        put("vhdx_metadata", v.name, m);

        Bytes b;
        const auto& g = layout.geometry;
        uint8_t shape = 0;
        while ((vhdx::kMiB << shape) < g.block_size)
            ++shape;
        if (g.logical_sector_size == 4096) shape |= 0x10;
        if (g.has_parent) shape |= 0x20;
        le<uint8_t>(b, shape);
        le<uint32_t>(b, static_cast<uint32_t>(g.virtual_disk_size / g.logical_sector_size));
        le<uint16_t>(b, static_cast<uint16_t>(layout.file_size / vhdx::kMiB));
        le<uint64_t>(b, 3 << 20);
        append(b, slice(file, layout.regions.bat.file_offset, g.table_bytes()));
        put("vhdx_bat", v.name, b);
    }
    // The file identifier as the header harness sees it.
    {
        auto layout = must(vhdx::build_image_layout(variants[0].o), "vhdx");
        Bytes file = materialise(layout.writes, layout.file_size);
        Bytes h;
        le<uint8_t>(h, 0);
        append(h, trim_zeros(slice(file, 0, vhdx::kFileIdentifierMinSize)));
        put("vhdx_header", "file-identifier", h);
    }

    // Parent locators.
    {
        vhdx::VhdxParentLinkage link;
        link.parent_linkage = guid(9);
        link.parent_linkage2 = guid(10);
        link.relative_path = "..\\p.vhdx";
        link.volume_path = "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\p.vhdx";
        link.absolute_win32_path = "D:\\p.vhdx";
        put("vhdx_parent_locator", "full",
            must(vhdx::encode_parent_locator(vhdx::make_vhdx_parent_locator(link)), "locator"));
        vhdx::VhdxParentLinkage minimal;
        minimal.parent_linkage = guid(1);
        minimal.relative_path = "p.vhdx";
        put("vhdx_parent_locator", "minimal",
            must(vhdx::encode_parent_locator(vhdx::make_vhdx_parent_locator(minimal)), "locator"));
    }

    // Log entries: data and zero descriptors.
    vhdx::LogEntryParams params;
    params.log_guid = guid(42);
    params.sequence_number = 10;
    params.flushed_file_offset = 4 * vhdx::kMiB;
    params.last_file_offset = 4 * vhdx::kMiB;
    std::vector<vhdx::SectorUpdate> updates(2);
    updates[0].file_offset = 3 * vhdx::kMiB;
    updates[0].data = Bytes(4096, std::byte{0x5a});
    updates[1].file_offset = 3 * vhdx::kMiB + 8192;
    updates[1].data = Bytes(4096, std::byte{0x01});
    std::vector<std::pair<uint64_t, uint64_t>> zeros = {{2 * vhdx::kMiB + 4096, 8192}};
    Bytes entry1 = must(vhdx::build_log_entry(params, updates, zeros), "log entry");
    params.sequence_number = 11;
    Bytes entry2 = must(vhdx::build_log_entry(params, std::span(updates).first(1)), "log entry");
    params.sequence_number = 12;
    Bytes entry3 = must(vhdx::build_log_entry(params, {}, zeros), "log entry");
    for (auto [name, e] : {std::pair{"data-zero", &entry1}, {"data", &entry2}, {"zero", &entry3}}) {
        Bytes l;
        le<uint8_t>(l, 2);
        le<uint8_t>(l, 0);
        le<uint16_t>(l, 255);
        append(l, Bytes(16));
        append(l, *e);
        put("vhdx_log", name, l);
    }
    // A ring holding a sequence of three entries (tail at 0), and a wrapped one.
    auto ring_input = [&](std::vector<std::pair<uint8_t, const Bytes*>> chunks) {
        Bytes r;
        le<uint8_t>(r, 0);
        r.insert(r.end(), reinterpret_cast<const std::byte*>(params.log_guid.bytes.data()),
                 reinterpret_cast<const std::byte*>(params.log_guid.bytes.data()) + 16);
        le<uint16_t>(r, 4);
        le<uint16_t>(r, 0);
        for (auto [pos, bytes] : chunks) {
            le<uint8_t>(r, pos);
            le<uint16_t>(r, static_cast<uint16_t>(bytes->size()));
            append(r, *bytes);
        }
        return r;
    };
    uint8_t p2 = static_cast<uint8_t>(entry1.size() / 4096);
    uint8_t p3 = static_cast<uint8_t>(p2 + entry2.size() / 4096);
    put("vhdx_log_replay", "sequence", ring_input({{0, &entry1}, {p2, &entry2}, {p3, &entry3}}));
    put("vhdx_log_replay", "single", ring_input({{0, &entry1}}));
    put("vhdx_log_replay", "wrapped", ring_input({{255, &entry1}}));
}

// ---- raw -------------------------------------------------------------------

void raw_seeds() {
    Bytes file(64 << 10);
    for (size_t i = 0; i < file.size(); i += 4096)
        file[i] = std::byte{0x42};
    put("driver_raw", "64k", driver_input(file, 0, kStandardOps));
    put("driver_raw", "empty", driver_input({}, 0, kStandardOps));
    put("driver_raw", "ro", driver_input(file, 1, kStandardOps));
}

Bytes read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "seedgen: cannot read %s\n", path);
        std::exit(1);
    }
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Bytes b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "wrap") {
        Bytes in = driver_input(read_file(argv[2]), 0, kStandardOps);
        std::ofstream out(argv[3], std::ios::binary);
        out.write(reinterpret_cast<const char*>(in.data()),
                  static_cast<std::streamsize>(in.size()));
        return out ? 0 : 1;
    }
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTDIR | wrap IMAGE OUTFILE\n", argv[0]);
        return 2;
    }
    g_out = argv[1];
    qcow_seeds();
    qcow2_seeds();
    qcow2_bitmap_seeds();
    vhdx_seeds();
    raw_seeds();
    std::printf("seedgen: wrote %d seeds under %s\n", g_written, argv[1]);
    return 0;
}
