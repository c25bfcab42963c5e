// Memory use for reports: the process's resident memory (Linux /proc/self/status) and, for a
// CUDA device, what libtorch's caching allocator holds.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace opine {

struct MemoryStats {
  int64_t host_rss = 0;          // resident now (VmRSS)
  int64_t host_peak_rss = 0;     // highest resident since start or reset_peak (VmHWM)
  int64_t device_allocated = 0;  // bytes in tensors now (0 on CPU)
  int64_t device_peak = 0;       // highest device_allocated since start or reset_peak
  int64_t device_reserved = 0;   // bytes the caching allocator holds from the driver
};

// Host figures are 0 where /proc is missing; device figures are 0 for the CPU and for a CUDA
// device that was never used.
MemoryStats memory_stats(at::Device device);

// Restarts the peaks: the host's (best effort, /proc/self/clear_refs) and the device's.
void reset_peak(at::Device device);

// "512 B", "1.5 KiB", "3.25 GiB": binary units, three significant digits.
std::string format_bytes(int64_t bytes);

}  // namespace opine
