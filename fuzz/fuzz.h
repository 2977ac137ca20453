// Shared by every fuzz harness: the libFuzzer entry point each harness
// defines, a check that aborts (so every engine reports it as a crash, with
// or without sanitizers), and a reader that takes typed values from the
// front of the input. Harnesses are built three ways from one source (see
// fuzz/meson.build): AFL++ persistent (main_afl.cc), libFuzzer (no main) and
// a plain replay program run by `meson test` over the corpus (main_replay.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "formats/bytes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// A round trip or invariant that does not hold is a bug: report and abort.
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

namespace coblock::fuzz {

// Takes little-endian integers and byte runs from the front of the input;
// past the end it yields zeros, so every input is usable.
class InputReader {
  public:
    InputReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    template <class T>
    T take() {
        T v = 0;
        for (size_t i = 0; i < sizeof(T); ++i) {
            uint8_t b = pos_ < size_ ? data_[pos_] : 0;
            if (pos_ < size_) ++pos_;
            v = static_cast<T>(v | (static_cast<T>(b) << (8 * i)));
        }
        return v;
    }
    bool take_bool() { return take<uint8_t>() & 1; }
    // Up to `n` bytes (fewer at the end of the input).
    ByteSpan take_bytes(size_t n) {
        size_t len = n < size_ - pos_ ? n : size_ - pos_;
        ByteSpan out(reinterpret_cast<const std::byte*>(data_ + pos_), len);
        pos_ += len;
        return out;
    }
    // Everything not taken yet.
    ByteSpan rest() { return take_bytes(size_ - pos_); }
    size_t remaining() const { return size_ - pos_; }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

inline ByteSpan input_bytes(const uint8_t* data, size_t size) {
    return ByteSpan(reinterpret_cast<const std::byte*>(data), size);
}

}  // namespace coblock::fuzz
