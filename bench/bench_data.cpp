// Data pipeline throughput: read + normalise + template + tokenize + HDF5 cache write, then the
// cache-hit load, over dataset specs. Prints one JSON line; bench/data_throughput.py runs it
// beside the Python peer and prints ratios.
//   bench_data --tokenizer PATH --data-root DIR --out DIR SPEC.yaml ...
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/pipeline.h"
#include "models/tokenizer.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  using namespace opine;
  std::string tokenizer_path, data_root, out = "/tmp/opine-bench-data";
  std::vector<std::string> specs;
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokenizer" && i + 1 < argc) tokenizer_path = argv[++i];
    else if (a == "--data-root" && i + 1 < argc) data_root = argv[++i];
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--repeats" && i + 1 < argc) repeats = std::stoi(argv[++i]);
    else specs.push_back(a);
  }
  try {
    const auto tokenizer = models::load_tokenizer(tokenizer_path);
    data::Encoder encoder;
    encoder.tokenizer = tokenizer.get();
    encoder.task.instruction = "{text}";
    encoder.max_length = 128;
    double best_build = 1e30, best_hit = 1e30;
    int64_t examples = 0, tokens = 0;
    for (int r = 0; r < repeats; ++r) {
      examples = tokens = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (const std::string& spec_path : specs) {
        data::DataOptions o;
        o.spec = spec_path;
        o.data_root = data_root;
        const data::DatasetSpec spec = data::resolve_spec(o);
        const data::TokenCache cache = data::build_token_cache(spec, o, encoder);
        data::write_cache(std::filesystem::path(out) / (spec.name + ".h5"), cache);
        for (const auto& [name, split] : cache.splits) examples += int64_t(split.size()), tokens += int64_t(split.ids.size());
      }
      best_build = std::min(best_build, seconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      for (const std::string& spec_path : specs) {
        data::DataOptions o;
        o.spec = spec_path;
        const data::CacheRead read = data::read_cache(std::filesystem::path(out) / (data::resolve_spec(o).name + ".h5"));
        OPINE_CHECK(read.status == data::CacheStatus::kValid, "cache unreadable: ", read.why);
      }
      best_hit = std::min(best_hit, seconds_since(t0));
    }
    std::cout << nlohmann::json{{"examples", examples}, {"tokens", tokens}, {"build_seconds", best_build},
                                {"hit_seconds", best_hit}}
                     .dump()
              << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_data: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
