// Bounds-checked little/big-endian loads and stores over byte spans, and a
// read cursor with sticky failure. Pure: every on-disk decoder in formats/
// reads through these instead of casting bytes to packed structs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace coblock {

using ByteSpan = std::span<const std::byte>;
using MutableByteSpan = std::span<std::byte>;

inline ByteSpan as_bytes(const void* data, size_t size) {
    return ByteSpan(static_cast<const std::byte*>(data), size);
}
inline MutableByteSpan as_writable_bytes(void* data, size_t size) {
    return MutableByteSpan(static_cast<std::byte*>(data), size);
}

// Unchecked loads/stores: callers have checked `offset + sizeof(T) <= size`.
template <class T>
inline T load_le(const std::byte* p) {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
        v |= static_cast<T>(std::to_integer<uint8_t>(p[i])) << (8 * i);
    return v;
}
template <class T>
inline T load_be(const std::byte* p) {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
        v = static_cast<T>((v << 8) | std::to_integer<uint8_t>(p[i]));
    return v;
}
template <class T>
inline void store_le(std::byte* p, T v) {
    for (size_t i = 0; i < sizeof(T); ++i)
        p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
template <class T>
inline void store_be(std::byte* p, T v) {
    for (size_t i = 0; i < sizeof(T); ++i)
        p[i] = static_cast<std::byte>((v >> (8 * (sizeof(T) - 1 - i))) & 0xff);
}

// Reads fixed-width fields in sequence or at absolute positions. A read past
// the end sets a sticky failure flag and yields zero, so a decoder can read a
// whole structure and check `ok()` once.
class ByteReader {
  public:
    explicit ByteReader(ByteSpan bytes) : bytes_(bytes) {}

    bool ok() const { return ok_; }
    size_t size() const { return bytes_.size(); }
    size_t position() const { return pos_; }
    size_t remaining() const { return pos_ <= bytes_.size() ? bytes_.size() - pos_ : 0; }

    void seek(size_t pos) {
        if (pos > bytes_.size()) ok_ = false;
        pos_ = pos;
    }
    void skip(size_t n) { seek(pos_ + n); }

    uint8_t u8() { return read<uint8_t, false>(); }
    uint16_t le16() { return read<uint16_t, false>(); }
    uint32_t le32() { return read<uint32_t, false>(); }
    uint64_t le64() { return read<uint64_t, false>(); }
    uint16_t be16() { return read<uint16_t, true>(); }
    uint32_t be32() { return read<uint32_t, true>(); }
    uint64_t be64() { return read<uint64_t, true>(); }

    // Copies `n` bytes into `out`; on failure fills with zero.
    void bytes(void* out, size_t n) {
        if (n == 0) return;  // memcpy with a null pointer is undefined even for 0
        if (!fits(n)) {
            std::memset(out, 0, n);
            return;
        }
        std::memcpy(out, bytes_.data() + pos_, n);
        pos_ += n;
    }
    // A view of the next `n` bytes (empty on failure).
    ByteSpan view(size_t n) {
        if (!fits(n)) return {};
        ByteSpan v = bytes_.subspan(pos_, n);
        pos_ += n;
        return v;
    }

  private:
    bool fits(size_t n) {
        if (!ok_ || pos_ > bytes_.size() || n > bytes_.size() - pos_) {
            ok_ = false;
            return false;
        }
        return true;
    }
    template <class T, bool kBigEndian>
    T read() {
        if (!fits(sizeof(T))) return 0;
        const std::byte* p = bytes_.data() + pos_;
        pos_ += sizeof(T);
        return kBigEndian ? load_be<T>(p) : load_le<T>(p);
    }

    ByteSpan bytes_;
    size_t pos_ = 0;
    bool ok_ = true;
};

// The writing counterpart, for encoders. Writes past the end fail stickily
// and write nothing.
class ByteWriter {
  public:
    explicit ByteWriter(MutableByteSpan bytes) : bytes_(bytes) {}

    bool ok() const { return ok_; }
    size_t position() const { return pos_; }
    void seek(size_t pos) {
        if (pos > bytes_.size()) ok_ = false;
        pos_ = pos;
    }
    void skip(size_t n) { seek(pos_ + n); }

    void u8(uint8_t v) { write<uint8_t, false>(v); }
    void le16(uint16_t v) { write<uint16_t, false>(v); }
    void le32(uint32_t v) { write<uint32_t, false>(v); }
    void le64(uint64_t v) { write<uint64_t, false>(v); }
    void be16(uint16_t v) { write<uint16_t, true>(v); }
    void be32(uint32_t v) { write<uint32_t, true>(v); }
    void be64(uint64_t v) { write<uint64_t, true>(v); }
    void bytes(const void* data, size_t n) {
        if (n == 0) return;
        if (!fits(n)) return;
        std::memcpy(bytes_.data() + pos_, data, n);
        pos_ += n;
    }
    void zeros(size_t n) {
        if (!fits(n)) return;
        std::memset(bytes_.data() + pos_, 0, n);
        pos_ += n;
    }

  private:
    bool fits(size_t n) {
        if (!ok_ || pos_ > bytes_.size() || n > bytes_.size() - pos_) {
            ok_ = false;
            return false;
        }
        return true;
    }
    template <class T, bool kBigEndian>
    void write(T v) {
        if (!fits(sizeof(T))) return;
        std::byte* p = bytes_.data() + pos_;
        pos_ += sizeof(T);
        if (kBigEndian)
            store_be<T>(p, v);
        else
            store_le<T>(p, v);
    }

    MutableByteSpan bytes_;
    size_t pos_ = 0;
    bool ok_ = true;
};

// Overflow-checked arithmetic for image-supplied values.
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
    return !__builtin_add_overflow(a, b, out);
}
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
    return !__builtin_mul_overflow(a, b, out);
}
inline bool is_power_of_two(uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}
inline uint64_t align_up(uint64_t v, uint64_t alignment) {
    return (v + alignment - 1) / alignment * alignment;
}
inline uint64_t align_down(uint64_t v, uint64_t alignment) {
    return v / alignment * alignment;
}
inline uint64_t div_round_up(uint64_t a, uint64_t b) {
    return a / b + (a % b != 0);
}

}  // namespace coblock
