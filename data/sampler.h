// Which examples each rank trains on, batch by batch, in an order that every rank computes alone.
//
// An epoch's order is a function of (seed, epoch) only, drawn with opine's own generator
// (SplitMix64-seeded xoshiro256**, unbiased bounded draws, our own Fisher-Yates), so it is the
// same on every rank, compiler and standard library. The order is cut into global batches of
// batch_size * world_size examples; rank r takes positions r, r + W, r + 2W, ... of each global
// batch. Over a whole epoch that is exactly torch's DistributedSampler shard
// (indices[rank::world_size]) read batch_size at a time, and every rank makes the same number of
// steps with the same batch sizes, so collectives stay in step.
//
//   drop_last = false: the order is padded to a multiple of world_size by repeating it from the
//     start (as torch does); the last batch may be short (the same size on every rank).
//   drop_last = true: the incomplete last global batch is dropped (different examples each epoch
//     when shuffling); every batch is full and no example repeats.
//
// group_by_length (as transformers' LengthGroupedSampler, distributed): the shuffled order is
// cut into mega-batches of group_window global batches, each sorted by decreasing length, then
// cut into global batches whose order is shuffled across the epoch; the global batch holding the
// longest example goes first so an out-of-memory shows at the first step, not the last. Because
// a rank takes a stride of a sorted global batch, all ranks see similar lengths at each step.
//
// The sampler knows nothing of MPI: rank and world size are plain parameters.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <vector>

#include "core/config.h"
#include "core/random.h"

namespace opine::data {

struct SamplerOptions {
  uint64_t seed = 42;
  bool shuffle = true;
  bool drop_last = false;
  int64_t batch_size = 8;      // per rank
  bool group_by_length = false;
  int64_t group_window = 50;   // global batches per length-sorted mega-batch
  template <class V>
  void visit(V& v) {
    v("seed", seed, "seed of every epoch's order (with the epoch number)");
    v("shuffle", shuffle, "shuffle each epoch (false: dataset order)");
    v("drop_last", drop_last, "drop the incomplete last batch instead of repeating examples");
    v("batch_size", batch_size, "examples per batch on each rank", config::at_least(1));
    v("group_by_length", group_by_length, "batch examples of similar length together");
    v("group_window", group_window, "global batches per length-sorted mega-batch",
      config::at_least(1));
  }
};

// Where a sampler stands: the epoch and how many batches of it were handed out. The same on every
// rank, so rank 0 alone may save it. The other fields describe the configuration that produced the
// position; restore() refuses a state from another configuration, whose position would mean
// different examples.
struct SamplerState {
  int64_t epoch = 0;
  int64_t position = 0;  // batches of this epoch already handed out
  uint64_t seed = 0;
  int64_t num_examples = 0;
  int64_t world_size = 0;
  int64_t batch_size = 0;
  bool operator==(const SamplerState&) const = default;
};
void to_json(nlohmann::json& j, const SamplerState& s);
// A missing key or a wrong type is an opine::Error (kFormat) naming the key.
void from_json(const nlohmann::json& j, SamplerState& s);

class DistributedSampler {
 public:
  // `lengths` (tokens per example) is required with group_by_length and ignored otherwise.
  DistributedSampler(int64_t num_examples, SamplerOptions options, int rank, int world_size,
                     std::vector<int64_t> lengths = {});

  // Starts epoch `epoch` from its first batch.
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }

  // This rank's next batch of example indices; empty once the epoch is over.
  std::vector<int64_t> next_batch();

  // Batches per epoch (the same on every rank) and this rank's examples per epoch.
  int64_t num_batches() const { return static_cast<int64_t>(batch_starts_.size()) - 1; }
  int64_t shard_size() const { return static_cast<int64_t>(shard_.size()); }

  SamplerState state() const;
  // Continues exactly where `state` was taken; a state from another seed, dataset size, world
  // size or batch size, or a position past the epoch's end, is an opine::Error.
  void restore(const SamplerState& state);

  // The whole epoch's global order (every rank's examples, padded or cut as described above,
  // global batch after global batch). The same on every rank; exposed for tests and tools.
  static std::vector<int64_t> global_order(int64_t num_examples, const SamplerOptions& options,
                                           int world_size, int64_t epoch,
                                           const std::vector<int64_t>& lengths);

 private:
  void build_epoch();

  int64_t num_examples_;
  SamplerOptions options_;
  int rank_;
  int world_size_;
  std::vector<int64_t> lengths_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> shard_;         // this rank's examples of the epoch, batch after batch
  std::vector<int64_t> batch_starts_;  // offsets into shard_, one past the end last
};

using opine::Xoshiro256;  // the generator of every random choice in data/ (core/random.h)

}  // namespace opine::data
