// IoVector: slicing, concatenation, copies, fill and alignment.
#include "block/iovec.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace coblock {
namespace {

TEST(IoVector, AppendMergesContiguousBuffers) {
    std::vector<char> buf(100);
    IoVector v;
    v.append(buf.data(), 40);
    v.append(buf.data() + 40, 60);
    EXPECT_EQ(v.slice_count(), 1u);
    EXPECT_EQ(v.size(), 100u);
}

TEST(IoVector, SliceAndConcatAreViews) {
    std::vector<char> a(10), b(10);
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 10);
    IoVector v = IoVector::concat(IoVector(a.data(), 10), IoVector(b.data(), 10));
    EXPECT_EQ(v.slice_count(), 2u);
    IoVector mid = v.slice(5, 10);
    EXPECT_EQ(mid.size(), 10u);
    EXPECT_EQ(mid.slice_count(), 2u);
    char out[10];
    EXPECT_EQ(mid.copy_to(0, out, 10), 10u);
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(out[i], 5 + i);
    mid.fill(0, 0x55, 10);  // writes through to the original buffers
    EXPECT_EQ(a[5], 0x55);
    EXPECT_EQ(b[4], 0x55);
    EXPECT_EQ(b[5], 15);
}

TEST(IoVector, CopyFromAcrossSlicesAndShortAtEnd) {
    std::vector<char> a(3), b(3);
    IoVector v = IoVector::concat(IoVector(a.data(), 3), IoVector(b.data(), 3));
    const char src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    EXPECT_EQ(v.copy_from(2, src, 8), 4u);
    EXPECT_EQ(a[2], 1);
    EXPECT_EQ(b[2], 4);
}

TEST(IoVector, ManySlicesSpillToHeapAndCopyCorrectly) {
    std::vector<std::vector<char>> bufs(20, std::vector<char>(3, 0));
    IoVector v;
    for (auto& b : bufs)
        v.append(b.data(), b.size());
    EXPECT_EQ(v.slice_count(), 20u);
    IoVector copy = v;
    copy.fill(7);
    for (auto& b : bufs)
        EXPECT_EQ(b[2], 7);
    EXPECT_FALSE(v.is_zero());
    v.fill(0);
    EXPECT_TRUE(v.is_zero());
}

TEST(IoVector, AlignmentAndIovec) {
    AlignedBuffer buf(8192);
    IoVector aligned = buf.iov();
    EXPECT_TRUE(aligned.is_aligned(4096));
    EXPECT_FALSE(aligned.slice(1, 4096).is_aligned(512));
    EXPECT_FALSE(aligned.slice(0, 100).is_aligned(512));
    iovec out[2];
    EXPECT_EQ(aligned.to_iovec(out, 2), 1u);
    EXPECT_EQ(out[0].iov_len, 8192u);
}

}  // namespace
}  // namespace coblock
