#include "launch/progress.h"

#include <unistd.h>

#include <cstdio>

namespace opine::launch {

ProgressBar::ProgressBar(int64_t total, std::string unit, bool enabled)
    : total_(total), unit_(std::move(unit)), draw_(enabled && isatty(STDERR_FILENO)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double ProgressBar::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done) {
  if (!draw_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const double fraction = total_ > 0 ? double(done) / double(total_) : 1.0;
  const int filled = int(fraction * kWidth);
  std::string bar(size_t(filled), '#');
  bar.resize(kWidth, '.');
  const double rate = double(done) / std::max(seconds(), 1e-9);
  std::fprintf(stderr, "\r[%s] %lld/%lld %s, %.1f %s/s", bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!draw_) return;
  update(total_);
  std::fprintf(stderr, "\n");
}

}  // namespace opine::launch
