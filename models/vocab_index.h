// A read-only map from token text to id for the look-ups tokenizers make on every symbol pair of
// every text. std::unordered_map walks a chain of separately allocated nodes and divides to find
// each bucket; this keeps the keys in one buffer and probes a power-of-two table, about 3x fewer
// cycles per look-up (bench/README.md). (Debian's Abseil is built with its own string_view, so its
// flat_hash_map cannot be searched with std::string_view.)
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace opine::models::bpe {

class VocabIndex {
 public:
  // Adds `key` -> `id` unless `key` is present already (the first id stays, as
  // std::unordered_map::emplace keeps it). Returns whether it was added.
  bool insert(std::string_view key, int32_t id);
  // The id of `key`, or nullptr. Inline: it runs for every symbol pair of every text.
  const int32_t* find(std::string_view key) const {
    if (slots_.empty()) return nullptr;
    const uint64_t hash = hash_of(key);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.length == kEmpty) return nullptr;
      if (slot.tag == tag && slot.length == key.size() &&
          std::memcmp(keys_.data() + slot.offset, key.data(), key.size()) == 0)
        return &slot.id;
    }
  }
  size_t size() const { return size_; }

  // Eight bytes at a time, each word multiplied in, and a final avalanche so that the low bits
  // (the table index) and the high ones (the tag) depend on every byte. Token texts are short:
  // most take one or two words.
  static uint64_t hash_of(std::string_view key) {
    uint64_t h = key.size() * kMul;
    size_t i = 0;
    for (; i + 8 <= key.size(); i += 8) {
      uint64_t word;
      std::memcpy(&word, key.data() + i, 8);
      h = (h ^ mix(word)) * kMul;
    }
    if (i < key.size()) {
      uint64_t word = 0;
      std::memcpy(&word, key.data() + i, key.size() - i);
      h = (h ^ mix(word)) * kMul;
    }
    return mix(h);
  }

 private:
  // 16 bytes: the high half of the hash as a tag, so that most misses never touch the keys.
  struct Slot {
    uint32_t tag = 0;
    uint32_t offset = 0;
    uint32_t length = kEmpty;
    int32_t id = -1;
  };
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  static constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio
  static uint64_t mix(uint64_t x) {
    x ^= x >> 32;
    x *= kMul;
    return x ^ (x >> 29);
  }

  void place(const Slot& slot, uint64_t hash);
  void grow();

  std::vector<Slot> slots_;
  std::string keys_;  // every key, back to back
  size_t size_ = 0;
};

}  // namespace opine::models::bpe
