// The sampler across real processes (ctest `mpi.sampler`, run by mpirun -np 2): every rank
// computes its shard alone, with no communication, for two epochs, once straight through and once
// interrupted mid-epoch (rank 0's saved state is broadcast as a checkpoint would carry it, and a
// fresh sampler restores it). Rank 0 gathers every shard and checks that the shards are disjoint
// and cover the epoch, that ranks stepped in lockstep, that each shard is what rank 0 computes
// for that rank, and that the resumed batches equal the uninterrupted ones. Exit status 1 on
// any failure, on every rank.
#include <mpi.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "data/sampler.h"

namespace {

using opine::data::DistributedSampler;
using opine::data::SamplerOptions;
using opine::data::SamplerState;

int g_failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "mpi.sampler: FAILED: %s\n", what.c_str());
  }
}

// One epoch's batches, flattened, with each batch's size.
struct Drawn {
  std::vector<int64_t> indices;
  std::vector<int64_t> sizes;
  void add(const std::vector<int64_t>& batch) {
    indices.insert(indices.end(), batch.begin(), batch.end());
    sizes.push_back(static_cast<int64_t>(batch.size()));
  }
};

Drawn draw_rest(DistributedSampler& s, Drawn d = {}) {
  for (auto b = s.next_batch(); !b.empty(); b = s.next_batch()) d.add(b);
  return d;
}

// Every rank's vector, concatenated on rank 0 (empty elsewhere), with each rank's count.
std::vector<int64_t> gather(const std::vector<int64_t>& mine, int rank, int world,
                            std::vector<int>& counts) {
  const int n = static_cast<int>(mine.size());
  counts.assign(static_cast<size_t>(world), 0);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> displs(static_cast<size_t>(world), 0);
  int total = 0;
  for (int r = 0; r < world; ++r) displs[static_cast<size_t>(r)] = total, total += counts[static_cast<size_t>(r)];
  std::vector<int64_t> all(rank == 0 ? static_cast<size_t>(total) : 0);
  MPI_Gatherv(mine.data(), n, MPI_INT64_T, all.data(), counts.data(), displs.data(), MPI_INT64_T,
              0, MPI_COMM_WORLD);
  return all;
}

std::string broadcast_string(std::string s, int rank) {
  int n = static_cast<int>(s.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  s.resize(static_cast<size_t>(n));
  MPI_Bcast(s.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return s;
}

void run(const std::string& name, int64_t n, SamplerOptions o, const std::vector<int64_t>& lengths,
         int rank, int world) {
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const std::string where = name + " epoch " + std::to_string(epoch);
    DistributedSampler straight(n, o, rank, world, lengths);
    straight.set_epoch(epoch);
    const Drawn full = draw_rest(straight);

    // Interrupted after half the epoch; the checkpoint is rank 0's state.
    DistributedSampler first(n, o, rank, world, lengths);
    first.set_epoch(epoch);
    Drawn resumed;
    for (int64_t i = 0; i < first.num_batches() / 2; ++i) resumed.add(first.next_batch());
    const std::string saved = broadcast_string(nlohmann::json(first.state()).dump(), rank);
    DistributedSampler second(n, o, rank, world, lengths);
    second.restore(nlohmann::json::parse(saved).get<SamplerState>());
    resumed = draw_rest(second, resumed);

    std::vector<int> counts, size_counts, resumed_counts;
    const std::vector<int64_t> all = gather(full.indices, rank, world, counts);
    const std::vector<int64_t> sizes = gather(full.sizes, rank, world, size_counts);
    const std::vector<int64_t> all_resumed = gather(resumed.indices, rank, world, resumed_counts);
    if (rank != 0) continue;

    // Disjoint and covering: every example, each once but for the padding repeats.
    std::map<int64_t, int> seen;
    for (int64_t x : all) ++seen[x];
    const int64_t total = (n + world - 1) / world * world;
    check(static_cast<int64_t>(all.size()) == total, where + ": shards hold " +
          std::to_string(all.size()) + " examples, expected " + std::to_string(total));
    check(static_cast<int64_t>(seen.size()) == n, where + ": shards cover " +
          std::to_string(seen.size()) + " of " + std::to_string(n) + " examples");
    for (const auto& [x, count] : seen) {
      check(x >= 0 && x < n, where + ": index out of range " + std::to_string(x));
      if (n % world == 0) check(count == 1, where + ": example " + std::to_string(x) + " drawn twice");
    }
    // Lockstep: the same batch sizes at every step on every rank.
    for (int r = 1; r < world; ++r)
      check(size_counts[static_cast<size_t>(r)] == size_counts[0] &&
                std::equal(sizes.begin(), sizes.begin() + size_counts[0],
                           sizes.begin() + r * size_counts[0]),
            where + ": rank " + std::to_string(r) + " steps differently from rank 0");
    // Each process computed the shard rank 0 computes for it, and resuming changed nothing.
    size_t offset = 0;
    for (int r = 0; r < world; ++r) {
      DistributedSampler expect(n, o, r, world, lengths);
      expect.set_epoch(epoch);
      const Drawn e = draw_rest(expect);
      const auto begin = all.begin() + static_cast<std::ptrdiff_t>(offset);
      check(e.indices == std::vector<int64_t>(begin, begin + counts[static_cast<size_t>(r)]),
            where + ": rank " + std::to_string(r) + "'s shard differs from rank 0's computation");
      offset += static_cast<size_t>(counts[static_cast<size_t>(r)]);
    }
    check(all_resumed == all, where + ": batches after a mid-epoch restore differ");
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  try {
    SamplerOptions o;
    o.batch_size = 4;
    o.seed = 1234;
    run("shuffled", 103, o, {}, rank, world);
    run("even", 96, o, {}, rank, world);
    std::vector<int64_t> lengths;
    for (int64_t i = 0; i < 257; ++i) lengths.push_back(1 + (i * 7919) % 300);
    o.group_by_length = true;
    o.group_window = 5;
    run("grouped", 257, o, lengths, rank, world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi.sampler: rank %d: %s\n", rank, e.what());
    ++g_failures;
  }
  int failures = 0;
  MPI_Allreduce(&g_failures, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("mpi.sampler: %d ranks, %s\n", world, failures ? "FAILED" : "shards disjoint, covering, resumable");
  MPI_Finalize();
  return failures ? 1 : 0;
}
