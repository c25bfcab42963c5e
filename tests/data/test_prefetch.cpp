// The prefetch thread: order, bounded look-ahead, errors, and stopping early without hanging.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "data/prefetch.h"

namespace opine::data {
namespace {

TEST(Prefetch, DeliversEveryItemInOrderThenEnds) {
  int made = 0;
  Prefetcher<int> p([&]() -> std::optional<int> {
    if (made == 100) return std::nullopt;
    return made++;
  });
  for (int i = 0; i < 100; ++i) {
    const auto v = p.next();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, i);
  }
  EXPECT_FALSE(p.next().has_value());
  EXPECT_FALSE(p.next().has_value());
}

TEST(Prefetch, LooksAheadAtMostDepthItems) {
  std::atomic<int> made{0};
  Prefetcher<int> p([&]() -> std::optional<int> { return made++; }, 3);
  for (int consumed = 1; consumed <= 5; ++consumed) {
    ASSERT_TRUE(p.next().has_value());
    // The thread fills the queue while the consumer is away...
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (made.load() < consumed + 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // ... and, given every chance to run further, stops at `depth` items ahead: it only starts
    // an item when the queue has room for it.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(made.load(), consumed + 3);
  }
}

TEST(Prefetch, ProducerErrorsReachTheConsumerAfterEarlierItems) {
  int made = 0;
  Prefetcher<int> p([&]() -> std::optional<int> {
    if (made == 5) throw std::runtime_error("reader failed at item 5");
    return made++;
  });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.next().value(), i);
  try {
    (void)p.next();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "reader failed at item 5");
  }
  EXPECT_THROW((void)p.next(), std::runtime_error);  // and it stays failed
}

TEST(Prefetch, StoppingEarlyDoesNotHang) {
  // An endless producer: destroying the prefetcher mid-stream must stop its thread (a hang here
  // is the failure, caught by the test's timeout).
  std::atomic<int> made{0};
  {
    Prefetcher<std::vector<int>> p([&]() -> std::optional<std::vector<int>> {
      return std::vector<int>(1000, made++);
    });
    for (int i = 0; i < 3; ++i) EXPECT_EQ(p.next().value()[0], i);
  }
  {
    Prefetcher<int> never_read([&]() -> std::optional<int> { return made++; });
  }
  const int after = made.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(made.load(), after);  // nothing runs once they are gone
}

}  // namespace
}  // namespace opine::data
