// The token cache across real processes (ctest `mpi.cache`, mpirun -np 2): rank 0 builds and
// writes, the others wait at the barrier and read; nobody but rank 0 ever builds; every rank ends
// with the same cache; a second round reuses it without building. Exit status 1 on any failure.
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "data/cache.h"

namespace {

int g_failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "mpi.cache: FAILED: %s\n", what.c_str());
  }
}

opine::data::TokenCache make(int n) {
  opine::data::TokenCache c;
  c.classes = {"a", "b"};
  for (int i = 0; i < n; ++i) {
    opine::data::TokenizedExample e;
    e.ids = {i, i + 1, i + 2};
    e.label = i % 2;
    c.splits["train"].append(e, i + 1, 0);
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // One folder for all ranks, named by rank 0.
  long long pid = rank == 0 ? ::getpid() : 0;
  MPI_Bcast(&pid, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  const auto dir = std::filesystem::temp_directory_path() / ("opine-mpi-cache-" + std::to_string(pid));
  if (rank == 0) std::filesystem::create_directories(dir);
  MPI_Barrier(MPI_COMM_WORLD);

  opine::data::CacheCoordination coordination;
  coordination.rank = rank;
  coordination.barrier = [] { MPI_Barrier(MPI_COMM_WORLD); };
  try {
    for (int round = 0; round < 2; ++round) {
      int builds = 0;
      const opine::data::TokenCache got = opine::data::load_or_build_cache(dir / "c.h5", "hash-1", false, [&] {
        ++builds;
        return make(1000);
      }, coordination);
      check(builds == (rank == 0 && round == 0 ? 1 : 0), "rank " + std::to_string(rank) + " built in round " +
                                                             std::to_string(round) + ": " + std::to_string(builds));
      check(got.splits.count("train") && got.splits.at("train").size() == 1000, "rank " + std::to_string(rank) + " read it");
      long long tokens = got.splits.count("train") ? (long long)got.splits.at("train").ids.size() : -1, all = 0;
      MPI_Allreduce(&tokens, &all, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
      check(all == 3000LL * size, "every rank holds the same cache");
    }
  } catch (const std::exception& e) {
    check(false, std::string("rank ") + std::to_string(rank) + ": " + e.what());
  }
  int failures = g_failures, total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(dir);
  if (rank == 0 && total == 0) std::printf("mpi.cache: %d ranks, rank 0 built once, all read it, reused\n", size);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
