// qcow2 on-disk constants: magic, feature bits, extension types, entry masks and
// QEMU's implementation limits. Pure (constants only).
// Implements the numbers of specs/qcow2.txt and specs/qcow2-notes.md §1, §2.
#pragma once

#include <cstdint>

namespace coblock::qcow2 {

// --- header ---------------------------------------------------------------

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kVersion2 = 2;
inline constexpr uint32_t kVersion3 = 3;

// Byte sizes of the fixed header in each layout.
inline constexpr uint32_t kHeaderV2Length = 72;       // v2 header ends at snapshots_offset
inline constexpr uint32_t kHeaderV3MinLength = 104;   // v3 mandatory fields end at header_length
inline constexpr uint32_t kHeaderV3QemuLength = 112;  // what QEMU writes: + compression_type + pad
inline constexpr uint32_t kCompressionTypeOffset = 104;

// v2 images have no refcount_order field; the spec fixes 16-bit refcounts.
inline constexpr uint32_t kDefaultRefcountOrder = 4;

// --- limits (QEMU's, so that every image QEMU opens we open and vice versa) -

// QEMU cannot open clusters smaller than one sector.
inline constexpr uint32_t kMinClusterBits = 9;
// QEMU's implementation limit: 2 MiB clusters.
inline constexpr uint32_t kMaxClusterBits = 21;
// Extended L2: 32 subclusters must each be at least one 512-byte sector.
inline constexpr uint32_t kMinExtendedL2ClusterBits = 14;
// refcount_bits = 1 << order must not exceed 64.
inline constexpr uint32_t kMaxRefcountOrder = 6;
// QCOW_MAX_L1_SIZE: the active (and any snapshot) L1 table is at most 32 MiB.
inline constexpr uint64_t kMaxL1TableBytes = 32u << 20;
inline constexpr uint64_t kMaxL1Entries = kMaxL1TableBytes / 8;
// QCOW_MAX_REFTABLE_SIZE: the refcount table is at most 8 MiB.
inline constexpr uint64_t kMaxRefcountTableBytes = 8u << 20;
// QCOW_MAX_SNAPSHOTS: QEMU refuses images with more snapshots.
inline constexpr uint32_t kMaxSnapshots = 65536;
// QCOW_MAX_SNAPSHOT_EXTRA_DATA: per-entry extra data QEMU will load.
inline constexpr uint32_t kMaxSnapshotExtraData = 1024;
// QCOW_MAX_SNAPSHOTS_SIZE: the whole snapshot table QEMU will load (64 MiB).
inline constexpr uint64_t kMaxSnapshotTableBytes = 1024ull * kMaxSnapshots;
// Backing file names longer than this are refused by QEMU (and the spec).
inline constexpr uint32_t kMaxBackingFileNameLength = 1023;
// The backing format extension must be shorter than 16 bytes (QEMU's buffer).
inline constexpr uint32_t kMaxBackingFormatLength = 15;
// QCOW2_MAX_BITMAPS: bitmaps per image QEMU supports.
inline constexpr uint32_t kMaxBitmaps = 65535;
// QCOW2_MAX_BITMAP_DIRECTORY_SIZE: 1 KiB per bitmap, as QEMU bounds it.
inline constexpr uint64_t kMaxBitmapDirectoryBytes = 1024ull * kMaxBitmaps;
// Host offsets of data clusters, L2 tables and refblocks must stay below 2^56.
inline constexpr uint64_t kMaxHostOffset = (1ull << 56) - 1;
// Offsets and sizes QEMU handles are signed 64-bit (off_t).
inline constexpr uint64_t kMaxImageOffset = 0x7fffffffffffffffull;
// Guest data is addressed in 512-byte sectors; QEMU rounds the size down.
inline constexpr uint64_t kSectorSize = 512;

// --- feature bits -----------------------------------------------------------

inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompression = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
// Every incompatible bit this implementation understands.
inline constexpr uint64_t kIncompatKnownMask = 0x1f;

inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;

inline constexpr uint64_t kAutoclearBitmaps = 1ull << 0;
inline constexpr uint64_t kAutoclearDataFileRaw = 1ull << 1;
inline constexpr uint64_t kAutoclearKnownMask = 0x3;

// --- compression and encryption ---------------------------------------------

inline constexpr uint8_t kCompressionDeflate = 0;
inline constexpr uint8_t kCompressionZstd = 1;

inline constexpr uint32_t kCryptNone = 0;
inline constexpr uint32_t kCryptAes = 1;
inline constexpr uint32_t kCryptLuks = 2;

// --- header extension types -------------------------------------------------

inline constexpr uint32_t kExtEnd = 0x00000000;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtCryptoHeader = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

// --- entry masks (qcow2-notes.md §1) ----------------------------------------

inline constexpr uint64_t kCopiedFlag = 1ull << 63;      // L1/L2: refcount is exactly 1
inline constexpr uint64_t kCompressedFlag = 1ull << 62;  // L2: compressed descriptor
inline constexpr uint64_t kZeroFlag = 1ull << 0;         // L2 standard: reads as zeros

inline constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;
inline constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL2ReservedMask = 0x3f000000000001feull;
inline constexpr uint64_t kRefcountTableOffsetMask = 0xfffffffffffffe00ull;
inline constexpr uint64_t kRefcountTableReservedMask = 0x00000000000001ffull;

// Extended L2 entries: 32 subclusters, allocation bits 0..31, zero bits 32..63.
inline constexpr uint32_t kSubclustersPerCluster = 32;
inline constexpr uint64_t kSubclusterAllocMask = 0x00000000ffffffffull;
inline constexpr uint64_t kSubclusterZeroMask = 0xffffffff00000000ull;

}  // namespace coblock::qcow2
