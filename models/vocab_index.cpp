#include "models/vocab_index.h"

#include "core/error.h"

namespace opine::models::bpe {

bool VocabIndex::insert(std::string_view key, int32_t id) {
  if (find(key) != nullptr) return false;
  OPINE_ASSERT(keys_.size() + key.size() < kEmpty, "vocabulary index over 4 GiB of token text");
  if ((size_ + 1) * 2 > slots_.size()) grow();  // load factor at most 1/2: short probes
  const uint64_t hash = hash_of(key);
  place({static_cast<uint32_t>(hash >> 32), static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(key.size()), id},
        hash);
  keys_.append(key);
  ++size_;
  return true;
}

void VocabIndex::place(const Slot& slot, uint64_t hash) {
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].length != kEmpty) i = (i + 1) & mask;
  slots_[i] = slot;
  hashes_[i] = hash;
}

void VocabIndex::grow() {
  std::vector<Slot> old_slots = std::move(slots_);
  std::vector<uint64_t> old_hashes = std::move(hashes_);
  const size_t capacity = old_slots.empty() ? 64 : old_slots.size() * 2;
  slots_.assign(capacity, Slot{});
  hashes_.assign(capacity, 0);
  for (size_t i = 0; i < old_slots.size(); ++i)
    if (old_slots[i].length != kEmpty) place(old_slots[i], old_hashes[i]);
}

}  // namespace opine::models::bpe
