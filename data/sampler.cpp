#include "data/sampler.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace opine::data {

namespace {
constexpr uint64_t kEpochStream = 0x65706F6368;  // "epoch"
}  // namespace

void to_json(nlohmann::json& j, const SamplerState& s) {
  j = nlohmann::json{{"epoch", s.epoch},           {"position", s.position},
                     {"seed", s.seed},             {"num_examples", s.num_examples},
                     {"world_size", s.world_size}, {"batch_size", s.batch_size}};
}

void from_json(const nlohmann::json& j, SamplerState& s) {
  OPINE_CHECK_FORMAT(j.is_object(), "sampler state: expected a JSON object, got ", j.type_name());
  auto read = [&j](const char* key, auto& field) {
    OPINE_CHECK_FORMAT(j.contains(key), "sampler state: missing key '", key, "'");
    const auto& v = j.at(key);
    OPINE_CHECK_FORMAT(v.is_number_integer(), "sampler state: key '", key,
                       "' must be an integer, got ", v.type_name());
    field = v.template get<std::remove_reference_t<decltype(field)>>();
  };
  read("epoch", s.epoch);
  read("position", s.position);
  read("seed", s.seed);
  read("num_examples", s.num_examples);
  read("world_size", s.world_size);
  read("batch_size", s.batch_size);
}

std::vector<int64_t> DistributedSampler::global_order(int64_t num_examples,
                                                      const SamplerOptions& options,
                                                      int world_size, int64_t epoch,
                                                      const std::vector<int64_t>& lengths) {
  const int64_t n = num_examples;
  const int64_t w = world_size;
  const int64_t g = options.batch_size * w;  // one global batch
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  Xoshiro256 rng(derive_seed(options.seed, kEpochStream, uint64_t(epoch)));  // one stream per (seed, epoch)
  if (options.shuffle) rng.shuffle(order);
  if (n == 0) return order;

  if (options.drop_last) {
    order.resize(static_cast<size_t>(n / g * g));
  } else {
    // Pad to a multiple of the world size by repeating from the start (more than once when
    // there are fewer examples than ranks), as torch's DistributedSampler does.
    const int64_t total = (n + w - 1) / w * w;
    for (int64_t i = n; i < total; ++i) order.push_back(order[static_cast<size_t>(i - n)]);
  }
  if (!options.group_by_length || order.empty()) return order;

  const int64_t total = static_cast<int64_t>(order.size());
  const int64_t full = total / g;  // full global batches
  // As transformers: never fewer than about four mega-batches, so small datasets keep some
  // randomness in which examples meet.
  const int64_t window = std::max<int64_t>(1, std::min(options.group_window, full / 4));
  const int64_t mega = window * g;
  auto longer = [&lengths](int64_t a, int64_t b) {
    return lengths[static_cast<size_t>(a)] > lengths[static_cast<size_t>(b)];
  };
  for (int64_t s = 0; s < total; s += mega)
    std::stable_sort(order.begin() + s, order.begin() + std::min(total, s + mega), longer);

  // Shuffle whole global batches; a short last batch stays last so that every rank's batch
  // sizes agree step by step.
  std::vector<int64_t> batches(static_cast<size_t>(full));
  std::iota(batches.begin(), batches.end(), int64_t{0});
  if (options.shuffle) rng.shuffle(batches);
  if (full > 1) {
    // The batch with the longest example first: memory runs out at step one, not at the end.
    size_t longest = 0;
    int64_t longest_length = -1;
    for (size_t b = 0; b < batches.size(); ++b) {
      // A batch lies inside one mega-batch, sorted by decreasing length: its first is its longest.
      const int64_t len = lengths[static_cast<size_t>(order[static_cast<size_t>(batches[b] * g)])];
      if (len > longest_length) longest_length = len, longest = b;
    }
    std::swap(batches[0], batches[longest]);
  }
  std::vector<int64_t> grouped;
  grouped.reserve(order.size());
  for (int64_t b : batches)
    grouped.insert(grouped.end(), order.begin() + b * g, order.begin() + (b + 1) * g);
  grouped.insert(grouped.end(), order.begin() + full * g, order.end());
  return grouped;
}

DistributedSampler::DistributedSampler(int64_t num_examples, SamplerOptions options, int rank,
                                       int world_size, std::vector<int64_t> lengths)
    : num_examples_(num_examples),
      options_(options),
      rank_(rank),
      world_size_(world_size),
      lengths_(std::move(lengths)) {
  OPINE_CHECK(num_examples >= 0, "sampler: number of examples must be at least 0, got ",
              num_examples);
  OPINE_CHECK(world_size >= 1, "sampler: world size must be at least 1, got ", world_size);
  OPINE_CHECK(rank >= 0 && rank < world_size, "sampler: rank ", rank, " is outside [0, ",
              world_size, ")");
  OPINE_CHECK(options.batch_size >= 1, "sampler: batch_size must be at least 1, got ",
              options.batch_size);
  OPINE_CHECK(options.group_window >= 1, "sampler: group_window must be at least 1, got ",
              options.group_window);
  if (options_.group_by_length) {
    OPINE_CHECK(static_cast<int64_t>(lengths_.size()) == num_examples,
                "sampler: group_by_length needs one length per example: got ", lengths_.size(),
                " lengths for ", num_examples, " examples");
  } else {
    lengths_.clear();
  }
  build_epoch();
}

void DistributedSampler::build_epoch() {
  const std::vector<int64_t> order =
      global_order(num_examples_, options_, world_size_, epoch_, lengths_);
  const int64_t total = static_cast<int64_t>(order.size());
  const int64_t g = options_.batch_size * world_size_;
  shard_.clear();
  shard_.reserve(static_cast<size_t>(total / world_size_));
  batch_starts_.assign(1, 0);
  for (int64_t s = 0; s < total; s += g) {
    const int64_t end = std::min(total, s + g);
    for (int64_t i = s + rank_; i < end; i += world_size_) shard_.push_back(order[static_cast<size_t>(i)]);
    batch_starts_.push_back(static_cast<int64_t>(shard_.size()));
  }
}

void DistributedSampler::set_epoch(int64_t epoch) {
  OPINE_CHECK(epoch >= 0, "sampler: epoch must be at least 0, got ", epoch);
  epoch_ = epoch;
  position_ = 0;
  build_epoch();
}

std::vector<int64_t> DistributedSampler::next_batch() {
  if (position_ >= num_batches()) return {};
  const auto begin = shard_.begin() + batch_starts_[static_cast<size_t>(position_)];
  const auto end = shard_.begin() + batch_starts_[static_cast<size_t>(position_ + 1)];
  ++position_;
  return {begin, end};
}

SamplerState DistributedSampler::state() const {
  return {epoch_, position_, options_.seed, num_examples_, world_size_, options_.batch_size};
}

void DistributedSampler::restore(const SamplerState& s) {
  auto same = [](const char* what, auto saved, auto now) {
    OPINE_CHECK(saved == now, "sampler: cannot resume a state saved with ", what, " ", saved,
                " under ", what, " ", now, ": its position would name other examples");
  };
  same("seed", s.seed, options_.seed);
  same("number of examples", s.num_examples, num_examples_);
  same("world size", s.world_size, static_cast<int64_t>(world_size_));
  same("batch size", s.batch_size, options_.batch_size);
  OPINE_CHECK(s.epoch >= 0, "sampler: saved epoch must be at least 0, got ", s.epoch);
  const int64_t previous = epoch_;
  epoch_ = s.epoch;
  build_epoch();
  if (s.position < 0 || s.position > num_batches()) {
    const int64_t batches = num_batches();
    epoch_ = previous;  // leave the sampler as it was
    build_epoch();
    OPINE_CHECK(false, "sampler: saved position ", s.position, " is outside epoch ", s.epoch,
                " of ", batches, " batches");
  }
  position_ = s.position;
}

}  // namespace opine::data
