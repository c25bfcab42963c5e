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
}

void VocabIndex::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  for (const Slot& slot : old)  // the hash again from the key: growth happens only while building
    if (slot.length != kEmpty) place(slot, hash_of(std::string_view(keys_.data() + slot.offset, slot.length)));
}

}  // namespace opine::models::bpe
