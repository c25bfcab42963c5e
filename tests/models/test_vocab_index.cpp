// The tokenizers' read-only vocabulary index (models/vocab_index.h) against std::unordered_map
// on the same keys: every key found with its first id, absent keys not found, across growth.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>

#include "models/vocab_index.h"

namespace opine::models::bpe {
namespace {

TEST(VocabIndex, AgreesWithUnorderedMap) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> length(0, 20), byte(0, 255);
  VocabIndex index;
  std::unordered_map<std::string, int32_t> reference;
  std::vector<std::string> keys;
  for (int32_t id = 0; id < 5000; ++id) {
    std::string key(length(rng) % (id < 300 ? 3 : 21), '\0');  // short keys repeat: duplicates
    for (char& c : key) c = static_cast<char>(byte(rng) % (id < 300 ? 4 : 256));
    const bool added = reference.emplace(key, id).second;
    EXPECT_EQ(index.insert(key, id), added) << id;
    keys.push_back(key);
  }
  EXPECT_EQ(index.size(), reference.size());
  for (const std::string& key : keys) {
    const int32_t* id = index.find(key);
    ASSERT_NE(id, nullptr);
    EXPECT_EQ(*id, reference.at(key));  // the first id of a duplicated key
  }
  for (int i = 0; i < 2000; ++i) {
    std::string key(length(rng) + 22, 'q');  // longer than any key inserted
    key[i % key.size()] = static_cast<char>(i);
    EXPECT_EQ(index.find(key), nullptr);
  }
  EXPECT_EQ(VocabIndex().find("x"), nullptr);
}

}  // namespace
}  // namespace opine::models::bpe
