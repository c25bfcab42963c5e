// One labelled text as every stage of data/ passes it on: reader -> normalise -> augment ->
// template -> tokenizer -> cache.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace opine::data {

struct Example {
  std::string text;
  std::string topic;   // the stance target ("abortion"); empty for sentiment
  int label = -1;      // class index after the spec's label map; -1 when unknown (inference)
  double target = NAN; // regression target; NaN for classification
  int64_t row = -1;    // 1-based line (TweetEval, JSONL) or record (CSV) in the source file
  int source = -1;     // index of the source file in the dataset's list of files
  bool augmented = false;  // made by data/augment: trains, but metrics never count it
};

using Examples = std::vector<Example>;

}  // namespace opine::data
