// The distributed sampler: shards, seeded epochs, resume, length grouping. Every rank of a world
// is simulated in this process (the mpirun test in tests/data/mpi/ checks the same across real
// processes).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

#include "core/error.h"
#include "data/sampler.h"

namespace opine::data {
namespace {

using Batches = std::vector<std::vector<int64_t>>;

Batches draw_epoch(DistributedSampler& s) {
  Batches out;
  for (auto b = s.next_batch(); !b.empty(); b = s.next_batch()) out.push_back(b);
  return out;
}

// Every rank's batches of one epoch.
std::vector<Batches> draw_world(int64_t n, const SamplerOptions& o, int world, int64_t epoch,
                                const std::vector<int64_t>& lengths = {}) {
  std::vector<Batches> ranks;
  for (int r = 0; r < world; ++r) {
    DistributedSampler s(n, o, r, world, lengths);
    s.set_epoch(epoch);
    ranks.push_back(draw_epoch(s));
    EXPECT_EQ(static_cast<int64_t>(ranks.back().size()), s.num_batches());
  }
  return ranks;
}

// Same number of steps and the same batch size at each step on every rank (collectives stay in
// step); returns how often each example was drawn.
std::map<int64_t, int> check_lockstep(const std::vector<Batches>& ranks) {
  std::map<int64_t, int> seen;
  for (const Batches& r : ranks) {
    EXPECT_EQ(r.size(), ranks[0].size());
    for (size_t i = 0; i < r.size() && i < ranks[0].size(); ++i) {
      EXPECT_EQ(r[i].size(), ranks[0][i].size()) << "step " << i;
      for (int64_t x : r[i]) ++seen[x];
    }
  }
  return seen;
}

TEST(Sampler, ShardsAreDisjointAndCoverTheEpoch) {
  for (int64_t n : {1, 2, 7, 10, 37, 100}) {
    for (int64_t batch : {1, 3, 8}) {
      for (int world = 1; world <= 4; ++world) {
        SCOPED_TRACE(::testing::Message() << "n " << n << " batch " << batch << " world " << world);
        SamplerOptions o;
        o.batch_size = batch;
        const auto seen = check_lockstep(draw_world(n, o, world, 3));
        ASSERT_EQ(static_cast<int64_t>(seen.size()), n);  // every example...
        int64_t total = 0, repeated = 0;
        for (const auto& [index, count] : seen) {
          ASSERT_GE(index, 0);
          ASSERT_LT(index, n);
          total += count;
          repeated += count - 1;
        }
        // ... exactly once, except the few repeats that even out the shards (as torch does).
        EXPECT_EQ(total, (n + world - 1) / world * world);
        EXPECT_EQ(repeated, total - n);
      }
    }
  }
}

TEST(Sampler, DropLastGivesFullDisjointBatches) {
  for (int world = 1; world <= 4; ++world) {
    SamplerOptions o;
    o.batch_size = 3;
    o.drop_last = true;
    const auto ranks = draw_world(37, o, world, 0);
    const auto seen = check_lockstep(ranks);
    for (const auto& [index, count] : seen) EXPECT_EQ(count, 1) << index;
    EXPECT_EQ(static_cast<int64_t>(seen.size()), 37 / (3 * world) * (3 * world));
    for (const auto& b : ranks[0]) EXPECT_EQ(b.size(), 3u);
  }
}

// Without shuffling, a rank's shard is torch's DistributedSampler shard: the padded index list
// taken from `rank` with stride world_size, read batch_size at a time.
TEST(Sampler, UnshuffledShardIsTorchs) {
  const int64_t n = 11, batch = 2;
  for (int world = 1; world <= 4; ++world) {
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < n; ++i) indices.push_back(i);
    const int64_t total = (n + world - 1) / world * world;
    for (int64_t i = n; i < total; ++i) indices.push_back(indices[static_cast<size_t>(i - n)]);
    SamplerOptions o;
    o.shuffle = false;
    o.batch_size = batch;
    for (int r = 0; r < world; ++r) {
      std::vector<int64_t> expected;
      for (int64_t i = r; i < total; i += world) expected.push_back(indices[static_cast<size_t>(i)]);
      DistributedSampler s(n, o, r, world);
      std::vector<int64_t> got;
      for (const auto& b : draw_epoch(s)) {
        EXPECT_LE(static_cast<int64_t>(b.size()), batch);
        got.insert(got.end(), b.begin(), b.end());
      }
      EXPECT_EQ(got, expected) << "rank " << r << " of " << world;
    }
  }
}

TEST(Sampler, FewerExamplesThanRanksStillFeedEveryRank) {
  SamplerOptions o;
  o.batch_size = 4;
  const auto ranks = draw_world(2, o, 4, 0);
  for (const auto& r : ranks) {
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].size(), 1u);
  }
  EXPECT_EQ(check_lockstep(ranks).size(), 2u);
  EXPECT_TRUE(draw_world(0, o, 2, 0)[0].empty());
}

TEST(Sampler, OrderDependsOnSeedAndEpochOnly) {
  SamplerOptions o;
  const auto a = DistributedSampler::global_order(1000, o, 2, 5, {});
  EXPECT_EQ(a, DistributedSampler::global_order(1000, o, 2, 5, {}));
  EXPECT_NE(a, DistributedSampler::global_order(1000, o, 2, 6, {}));
  SamplerOptions other = o;
  other.seed = o.seed + 1;
  EXPECT_NE(a, DistributedSampler::global_order(1000, other, 2, 5, {}));
  // It is a shuffle, not the dataset order.
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(a, sorted);
  // A sampler built later, elsewhere, draws the same batches.
  DistributedSampler s1(1000, o, 1, 2), s2(1000, o, 1, 2);
  s1.set_epoch(4);
  (void)draw_epoch(s2);  // a sampler with a history...
  s2.set_epoch(4);       // ... starts the epoch afresh
  EXPECT_EQ(draw_epoch(s1), draw_epoch(s2));
}

TEST(Sampler, GeneratorDrawsUniformlyInRange) {
  Xoshiro256 rng(7);
  std::vector<int> counts(5, 0);
  const int draws = 50000;
  for (int i = 0; i < draws; ++i) {
    const uint64_t v = rng.below(5);
    ASSERT_LT(v, 5u);
    ++counts[v];
  }
  // Chi-square with 4 degrees of freedom; 18.5 is its 0.999 quantile (the seed is fixed, so the
  // bound guards against a biased draw, not against chance).
  double chi2 = 0;
  for (int c : counts) chi2 += (c - draws / 5.0) * (c - draws / 5.0) / (draws / 5.0);
  EXPECT_LT(chi2, 18.5);
  std::vector<int> v(100);
  for (int i = 0; i < 100; ++i) v[i] = i;
  rng.shuffle(v);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(sorted[i], i);
}

TEST(Sampler, ResumeMidEpochGivesTheSameRemainingBatches) {
  SamplerOptions o;
  o.batch_size = 3;
  for (bool grouped : {false, true}) {
    o.group_by_length = grouped;
    std::vector<int64_t> lengths;
    for (int64_t i = 0; i < 53; ++i) lengths.push_back((i * 37) % 101);
    DistributedSampler straight(53, o, 1, 3, lengths);
    straight.set_epoch(2);
    const Batches all = draw_epoch(straight);
    ASSERT_GT(all.size(), 4u);
    for (size_t stop : {size_t{0}, size_t{4}, all.size()}) {
      DistributedSampler first(53, o, 1, 3, lengths);
      first.set_epoch(2);
      for (size_t i = 0; i < stop; ++i) ASSERT_EQ(first.next_batch(), all[i]);
      // Through JSON, as a checkpoint stores it, into a sampler that was somewhere else.
      const std::string saved = nlohmann::json(first.state()).dump();
      DistributedSampler resumed(53, o, 1, 3, lengths);
      resumed.set_epoch(7);
      (void)resumed.next_batch();
      resumed.restore(nlohmann::json::parse(saved).get<SamplerState>());
      EXPECT_EQ(resumed.epoch(), 2);
      EXPECT_EQ(resumed.state(), first.state());
      const Batches rest = draw_epoch(resumed);
      EXPECT_EQ(rest, Batches(all.begin() + static_cast<std::ptrdiff_t>(stop), all.end()))
          << "grouped " << grouped << " stop " << stop;
    }
  }
}

TEST(Sampler, RefusesAStateFromAnotherConfiguration) {
  SamplerOptions o;
  DistributedSampler s(100, o, 0, 2);
  const SamplerState ok = s.state();
  auto changed = [&](auto edit) {
    SamplerState bad = ok;
    edit(bad);
    return bad;
  };
  EXPECT_THROW(s.restore(changed([](SamplerState& x) { x.world_size = 4; })), Error);
  EXPECT_THROW(s.restore(changed([](SamplerState& x) { x.seed += 1; })), Error);
  EXPECT_THROW(s.restore(changed([](SamplerState& x) { x.num_examples = 99; })), Error);
  EXPECT_THROW(s.restore(changed([](SamplerState& x) { x.batch_size = 2; })), Error);
  EXPECT_THROW(s.restore(changed([](SamplerState& x) { x.position = 1000; })), Error);
  EXPECT_EQ(s.state(), ok);  // a refused state leaves the sampler as it was
  EXPECT_THROW(nlohmann::json::parse(R"({"epoch": 1})").get<SamplerState>(), Error);
  EXPECT_THROW(nlohmann::json::parse(R"({"epoch": "1", "position": 0, "seed": 1, "num_examples": 1,
                                         "world_size": 1, "batch_size": 1})")
                   .get<SamplerState>(),
               Error);
  EXPECT_THROW(DistributedSampler(10, o, 2, 2), Error);
  o.group_by_length = true;
  EXPECT_THROW(DistributedSampler(10, o, 0, 2, {1, 2, 3}), Error);
}

// The share of padding when each rank pads its batches to their longest example: what length
// grouping is for.
double padding_share(const std::vector<Batches>& ranks, const std::vector<int64_t>& lengths) {
  double padded = 0, real = 0;
  for (const Batches& r : ranks)
    for (const auto& b : r) {
      int64_t longest = 0;
      for (int64_t x : b) {
        longest = std::max(longest, lengths[static_cast<size_t>(x)]);
        real += static_cast<double>(lengths[static_cast<size_t>(x)]);
      }
      padded += static_cast<double>(longest) * static_cast<double>(b.size());
    }
  return 1.0 - real / padded;
}

TEST(Sampler, LengthGroupingBatchesSimilarLengthsAndStillCovers) {
  const int64_t n = 2003;
  std::vector<int64_t> lengths;
  Xoshiro256 rng(1);
  for (int64_t i = 0; i < n; ++i) lengths.push_back(1 + static_cast<int64_t>(rng.below(512)));
  SamplerOptions o;
  o.batch_size = 4;
  o.group_window = 10;
  const auto plain = draw_world(n, o, 2, 1, lengths);
  o.group_by_length = true;
  const auto grouped = draw_world(n, o, 2, 1, lengths);
  const auto seen = check_lockstep(grouped);
  EXPECT_EQ(static_cast<int64_t>(seen.size()), n);
  int64_t total = 0;
  for (const auto& [index, count] : seen) total += count;
  EXPECT_EQ(total, 2004);
  // Uniform lengths in [1, 512]: a random batch of 4 pads to ~4/5 of 512 while its mean is half
  // of 512, ~37% padding. A sorted mega-batch of 80 cut into global batches of 8 spans ~1/10 of
  // the range per batch, ~25 tokens of padding per example against a mean of 256 (measured 7%).
  const double random_share = padding_share(plain, lengths);
  const double grouped_share = padding_share(grouped, lengths);
  EXPECT_GT(random_share, 0.3);
  EXPECT_LT(grouped_share, 0.1);
  // The longest example comes at the first step.
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  bool first_has_longest = false;
  for (const auto& r : grouped)
    for (int64_t x : r[0]) first_has_longest |= lengths[static_cast<size_t>(x)] == longest;
  EXPECT_TRUE(first_has_longest);
  // Batches are shuffled, not long-to-short across the epoch, and differ between epochs.
  std::vector<int64_t> firsts;
  for (const auto& b : grouped[0]) firsts.push_back(lengths[static_cast<size_t>(b[0])]);
  EXPECT_FALSE(std::is_sorted(firsts.rbegin(), firsts.rend()));
  EXPECT_NE(grouped, draw_world(n, o, 2, 2, lengths));
}

}  // namespace
}  // namespace opine::data
