// A background thread that makes the next batches while the current step runs.
//
//   Prefetcher<Batch> batches([&]() -> std::optional<Batch> {
//     auto indices = sampler.next_batch();
//     if (indices.empty()) return std::nullopt;  // the epoch is over
//     Batch b = collate(gather(indices), LabelKind::kClass, options);
//     b.sampler_state = sampler.state();          // the position after this batch
//     return b;
//   });
//   while (auto b = batches.next()) step(*b);
//
// The producer runs on the thread only; everything it touches (the sampler above) belongs to the
// thread until the Prefetcher is destroyed, which is why a batch carries its own sampler state.
// At most `depth` finished items wait in the queue. Items come out in the order made. An exception
// thrown by the producer comes out of next() after the items made before it, and again on every
// later call. One consumer thread calls next(). Destroying the Prefetcher early (the consumer
// stops mid-epoch) stops the thread after the producer call in progress returns; it never waits
// for the queue to drain.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "core/error.h"

namespace opine::data {

template <class T>
class Prefetcher {
 public:
  // Returns the next item, or nullopt when there are no more.
  using Producer = std::function<std::optional<T>()>;

  explicit Prefetcher(Producer producer, size_t depth = 2)
      : producer_(std::move(producer)), depth_(depth) {
    OPINE_CHECK(depth_ >= 1, "prefetch: depth must be at least 1");
    OPINE_CHECK(static_cast<bool>(producer_), "prefetch: no producer");
    thread_ = std::thread([this] { run(); });
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    not_full_.notify_all();
    thread_.join();
  }

  // Blocks until an item is ready. nullopt once the producer has finished and the queue is
  // empty; rethrows the producer's exception instead when it failed.
  std::optional<T> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [this] { return !queue_.empty() || finished_; });
    if (!queue_.empty()) {
      std::optional<T> item(std::move(queue_.front()));
      queue_.pop_front();
      lock.unlock();
      not_full_.notify_one();
      return item;
    }
    if (error_) std::rethrow_exception(error_);
    return std::nullopt;
  }

 private:
  void run() {
    try {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(mutex_);
          not_full_.wait(lock, [this] { return stop_ || queue_.size() < depth_; });
          if (stop_) return;
        }
        std::optional<T> item = producer_();  // outside the lock: this is the slow part
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
        if (!item) {
          finished_ = true;
        } else {
          queue_.push_back(std::move(*item));
        }
        not_empty_.notify_all();
        if (finished_) return;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      finished_ = true;
      not_empty_.notify_all();
    }
  }

  Producer producer_;
  size_t depth_;
  std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> queue_;
  bool stop_ = false;
  bool finished_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once every other member exists
};

}  // namespace opine::data
