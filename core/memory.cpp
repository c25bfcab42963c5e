#include "core/memory.h"

#include <c10/core/CachingDeviceAllocator.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace opine {

namespace {

// A "Name:   1234 kB" line of /proc/self/status, in bytes; 0 when absent.
void read_status(int64_t& rss, int64_t& peak) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    int64_t* field = line.rfind("VmRSS:", 0) == 0 ? &rss : line.rfind("VmHWM:", 0) == 0 ? &peak : nullptr;
    if (!field) continue;
    std::istringstream words(line.substr(6));
    int64_t kib = 0;
    if (words >> kib) *field = kib * 1024;
  }
}

// The caching allocator of a GPU device, when this process has initialized it. Through c10's
// device-generic interface, so no CUDA header is needed and a CPU-only build works too.
c10::DeviceAllocator* device_allocator(at::Device device) {
  if (!device.is_cuda() || !at::hasCUDA()) return nullptr;
  auto* allocator = dynamic_cast<c10::DeviceAllocator*>(c10::GetAllocator(device.type()));
  return allocator && allocator->initialized() ? allocator : nullptr;
}

c10::DeviceIndex device_index(at::Device device) {
  return device.has_index() ? device.index() : c10::DeviceIndex(0);
}

}  // namespace

MemoryStats memory_stats(at::Device device) {
  MemoryStats s;
  read_status(s.host_rss, s.host_peak_rss);
  if (auto* allocator = device_allocator(device)) {
    const auto stats = allocator->getDeviceStats(device_index(device));
    constexpr size_t kAll = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    s.device_allocated = stats.allocated_bytes[kAll].current;
    s.device_peak = stats.allocated_bytes[kAll].peak;
    s.device_reserved = stats.reserved_bytes[kAll].current;
  }
  return s;
}

void reset_peak(at::Device device) {
  // "5" resets VmHWM to the current RSS (Linux 4.0 and later); harmless elsewhere.
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
  if (auto* allocator = device_allocator(device)) allocator->resetPeakStats(device_index(device));
}

std::string format_bytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  const bool negative = bytes < 0;
  double v = std::abs(static_cast<double>(bytes));
  int unit = 0;
  while (v >= 1024 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0)
    std::snprintf(text, sizeof text, "%.0f B", v);
  else
    std::snprintf(text, sizeof text, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, kUnits[unit]);
  return (negative ? "-" : "") + std::string(text);
}

}  // namespace opine
