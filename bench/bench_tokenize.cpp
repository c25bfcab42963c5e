// Tokenizer throughput: encodes every line of a file, single-threaded and on all cores, and
// prints JSON. bench/tokenizer_throughput.py runs it beside Hugging Face `tokenizers` on the same texts.
//   bench_tokenize TOKENIZER TEXTS_FILE [REPEATS]
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "models/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_tokenize TOKENIZER TEXTS_FILE [REPEATS]\n";
    return 2;
  }
  try {
    const auto tokenizer = opine::models::load_tokenizer(argv[1]);
    std::ifstream in(argv[2]);
    OPINE_CHECK(in.good(), "cannot open ", argv[2]);
    std::vector<std::string> texts;
    for (std::string line; std::getline(in, line);) texts.push_back(line);
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
    using clock = std::chrono::steady_clock;
    auto best_rate = [&](int threads) {
      double best = 0;
      int64_t tokens = 0;
      for (int r = 0; r < repeats; ++r) {
        const auto start = clock::now();
        const auto ids = tokenizer->encode_batch(texts, true, threads);
        const double seconds = std::chrono::duration<double>(clock::now() - start).count();
        best = std::max(best, texts.size() / seconds);
        tokens = 0;
        for (const auto& v : ids) tokens += v.size();
      }
      return std::make_pair(best, tokens);
    };
    const auto [single, tokens] = best_rate(1);
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    const auto [multi, tokens_multi] = best_rate(cores);
    nlohmann::json out = {{"texts", texts.size()}, {"tokens", tokens}, {"texts_per_s_1_thread", single},
                          {"texts_per_s_all_cores", multi}, {"cores", cores}};
    std::cout << out.dump() << "\n";
  } catch (const opine::Error& e) {
    std::cerr << "bench_tokenize: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
