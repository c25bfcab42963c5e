// Memory figures: the host's from /proc, a CUDA device's from the caching allocator, and sizes in words.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/memory.h"

namespace opine {
namespace {

TEST(Memory, HostFiguresFromProc) {
  const MemoryStats before = memory_stats(at::kCPU);
  EXPECT_GT(before.host_rss, 1 << 20);
  EXPECT_GE(before.host_peak_rss, before.host_rss);
  EXPECT_EQ(before.device_allocated, 0);
  EXPECT_EQ(before.device_reserved, 0);
  {
    std::vector<char> block(64 << 20);
    std::memset(block.data(), 1, block.size());  // touched, so resident
    const MemoryStats during = memory_stats(at::kCPU);
    EXPECT_GE(during.host_rss, before.host_rss + (48 << 20));
    EXPECT_GE(during.host_peak_rss, during.host_rss);
  }
  reset_peak(at::kCPU);
  const MemoryStats after = memory_stats(at::kCPU);
  EXPECT_GE(after.host_peak_rss, after.host_rss);
}

TEST(Memory, FormatBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(int64_t{20} << 20), "20.0 MiB");
  EXPECT_EQ(format_bytes(int64_t{300} << 30), "300 GiB");
  EXPECT_EQ(format_bytes(-2048), "-2.00 KiB");
}

TEST(MemoryGpu, CudaAllocatorFigures) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const at::Device cuda(at::kCUDA, 0);
  at::Tensor warm = at::zeros({1}, at::TensorOptions(cuda));  // initializes the allocator
  const MemoryStats base = memory_stats(cuda);
  {
    at::Tensor t = at::zeros({16 << 20}, at::TensorOptions(cuda).dtype(at::kByte));
    const MemoryStats s = memory_stats(cuda);
    EXPECT_GE(s.device_allocated, base.device_allocated + (16 << 20));
    EXPECT_GE(s.device_peak, s.device_allocated);
    EXPECT_GE(s.device_reserved, s.device_allocated);
  }
  const MemoryStats freed = memory_stats(cuda);
  EXPECT_EQ(freed.device_allocated, base.device_allocated);
  EXPECT_GE(freed.device_peak, base.device_allocated + (16 << 20));
  reset_peak(cuda);
  EXPECT_EQ(memory_stats(cuda).device_peak, memory_stats(cuda).device_allocated);
}

}  // namespace
}  // namespace opine
