// A progress line for long predictions: drawn on stderr only when it is a terminal (batch jobs'
// logs stay clean), at most a few times a second, with the rate so far.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace opine::launch {

class ProgressBar {
 public:
  // `enabled`: this rank draws (rank 0); drawing also needs stderr to be a terminal.
  ProgressBar(int64_t total, std::string unit, bool enabled);
  void update(int64_t done);
  void finish();  // ends the line
  double seconds() const;

 private:
  int64_t total_;
  std::string unit_;
  bool draw_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace opine::launch
