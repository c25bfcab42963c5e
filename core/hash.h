// SHA-256 content hashes (OpenSSL's libcrypto), fed piece by piece: what a cache or a run's
// manifest depends on. Each piece is length-prefixed, so ("ab", "c") and ("a", "bc") differ.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace opine {

class ContentHash {
 public:
  ContentHash();
  ~ContentHash();
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;

  ContentHash& add(std::string_view bytes);
  // The file's bytes, streamed (its path is not part of the hash).
  ContentHash& add_file(const std::filesystem::path& path);
  // Lower-case hex; the object cannot be fed afterwards.
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace opine
