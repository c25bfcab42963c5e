#include "core/hash.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace opine {

struct ContentHash::State {
  EVP_MD_CTX* ctx = nullptr;
  bool done = false;
};

ContentHash::ContentHash() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  OPINE_ASSERT(state_->ctx && EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) == 1, "SHA-256 init failed");
}

ContentHash::~ContentHash() { EVP_MD_CTX_free(state_->ctx); }

ContentHash& ContentHash::add(std::string_view bytes) {
  OPINE_ASSERT(!state_->done, "hash already finished");
  const uint64_t n = bytes.size();
  EVP_DigestUpdate(state_->ctx, &n, sizeof n);
  EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size());
  return *this;
}

ContentHash& ContentHash::add_file(const std::filesystem::path& path) {
  OPINE_ASSERT(!state_->done, "hash already finished");
  std::ifstream in(path, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", path.string());
  const uint64_t n = std::filesystem::file_size(path);
  EVP_DigestUpdate(state_->ctx, &n, sizeof n);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    EVP_DigestUpdate(state_->ctx, buffer.data(), size_t(in.gcount()));
  }
  return *this;
}

std::string ContentHash::hex() {
  OPINE_ASSERT(!state_->done, "hash already finished");
  state_->done = true;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, digest, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace opine
