// IoVector: the scatter-gather list every read and write path carries (QEMU's
// QEMUIOVector). It never owns the bytes it describes; views made by slice()
// and concat() alias the caller's buffers, so splitting a request costs no
// copy. Up to kInlineSlices slices live inside the object: a request that
// stays within that needs no heap allocation.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace coblock {

struct IoSlice {
    std::byte* data = nullptr;
    size_t size = 0;
};

class IoVector {
  public:
    static constexpr size_t kInlineSlices = 4;

    IoVector() = default;
    // A single-buffer vector.
    IoVector(void* data, size_t size) { append(data, size); }
    IoVector(const IoVector& other) { *this = other; }
    IoVector& operator=(const IoVector& other);
    IoVector(IoVector&& other) noexcept { *this = other; }
    IoVector& operator=(IoVector&& other) noexcept { return *this = other; }

    // Appends a buffer (merged with the previous slice when contiguous).
    void append(void* data, size_t size);
    void append(const IoVector& other);
    void clear();

    size_t size() const { return size_; }
    size_t slice_count() const { return count_; }
    const IoSlice& slice_at(size_t i) const { return slices()[i]; }
    std::span<const IoSlice> slices_view() const { return {slices(), count_}; }

    // A view of bytes [offset, offset+length) of this vector.
    IoVector slice(size_t offset, size_t length) const;
    // `a` followed by `b`.
    static IoVector concat(const IoVector& a, const IoVector& b);

    // Copies between the vector (starting at `offset`) and flat memory;
    // returns the bytes copied (short at the end of the vector).
    size_t copy_from(size_t offset, const void* src, size_t length);
    size_t copy_to(size_t offset, void* dst, size_t length) const;
    // Copies min(size) bytes from `src` into this vector.
    size_t copy_from_vector(const IoVector& src);
    // Sets `length` bytes from `offset` to `value`.
    void fill(size_t offset, uint8_t value, size_t length);
    void fill(uint8_t value) { fill(0, value, size_); }
    bool is_zero() const;

    // True if every slice address and length is a multiple of `alignment`.
    bool is_aligned(size_t alignment) const;

    // For preadv/pwritev/io_prep_preadv: slices as struct iovec. Stored in
    // `out`, whose capacity is reused across calls.
    void to_iovec(std::vector<iovec>& out) const;
    // The same into fixed storage; returns the count, or 0 if more than
    // `max` slices would be needed.
    size_t to_iovec(iovec* out, size_t max) const;

  private:
    IoSlice* slices() { return heap_.empty() ? inline_ : heap_.data(); }
    const IoSlice* slices() const { return heap_.empty() ? inline_ : heap_.data(); }
    void push(IoSlice s);

    IoSlice inline_[kInlineSlices];
    std::vector<IoSlice> heap_;  // used once more than kInlineSlices slices exist
    size_t count_ = 0;
    size_t size_ = 0;
};

// An owned, aligned, zero-initialised byte buffer for bounce buffers,
// metadata tables and tests. Alignment defaults to 4096 so it can go to
// O_DIRECT I/O.
class AlignedBuffer {
  public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(size_t size, size_t alignment = 4096);
    ~AlignedBuffer();
    AlignedBuffer(AlignedBuffer&& other) noexcept;
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;

    std::byte* data() { return data_; }
    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<std::byte> span() { return {data_, size_}; }
    std::span<const std::byte> span() const { return {data_, size_}; }
    IoVector iov() { return IoVector(data_, size_); }

  private:
    std::byte* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace coblock
