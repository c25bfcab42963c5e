// The process's place in a distributed job: MPI starts every process of an `mpirun` / `srun`
// job; rank and world size come from MPI, the local rank from the node-local communicator
// (MPI_Comm_split_type shared). Launched without a launcher (no OMPI_/PMI_/PMIX_/SLURM_ variables),
// MPI is not started and the runtime is one process with a self communicator. OPINE_FORCE_MPI=1
// starts MPI anyway (a singleton, for tests); OPINE_FORCE_MPI=0 never starts it.
//
// GPUs are bound by local rank: device local_rank % device_count, counted inside whatever
// CUDA_VISIBLE_DEVICES leaves visible.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "core/comm.h"

namespace opine::dist {

struct RuntimeInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // rank inside this node
  int local_size = 1;  // ranks on this node
  int node_index = 0;  // which node (0 .. nodes-1), in order of their lowest rank
  int num_nodes = 1;
  std::string host;
  std::string launcher;  // "none", "openmpi", "pmi", "pmix", "slurm"
};

// What the launcher's environment variables say before MPI starts (no MPI call): used to decide
// whether to start MPI at all and for early logs.
RuntimeInfo info_from_environment();

// After an error left a distributed Runtime (an exception unwound through it, so it did not
// finalize MPI): ends the whole job with `code` (MPI_Abort), so the other ranks do not wait in
// a collective forever. A no-op otherwise. main() calls it after printing the error.
void abort_job_if_failing(int code);

class Runtime {
 public:
  // Starts MPI when launched by a launcher (MPI_Init_thread, MPI_THREAD_FUNNELED or better),
  // else stays one process. Only one Runtime may exist; it finalizes MPI when destroyed.
  static std::unique_ptr<Runtime> start(int* argc, char*** argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RuntimeInfo& info() const { return info_; }
  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  int local_rank() const { return info_.local_rank; }
  bool distributed() const { return info_.world_size > 1; }

  // The device this rank computes on for a requested "cpu", "cuda" or "cuda:N" ("cuda" binds by
  // local rank; "cuda:N" is taken as given). Sets the current CUDA device.
  at::Device bind_device(const std::string& requested);

  // All ranks, for CPU tensors (MPI, or self with one process).
  Communicator& world();
  // The ranks of this node, for CPU tensors (loading once per node).
  Communicator& node();
  // The ranks of the world for tensors on `device`: NCCL for CUDA (created on first use, one
  // rank per GPU), else world().
  Communicator& for_device(at::Device device);

  // The ranks with the same `color` as a runtime of their own (every rank calls; MPI_Comm_split
  // in rank order), for groups that work apart, e.g. sweep trials in parallel. Its rank and world
  // are the group's; devices still bind by the rank's place on its node, so groups on one node
  // take different GPUs. It must not outlive this runtime.
  std::unique_ptr<Runtime> split(int color);

  // A human line: "rank 1/4 (local 1/2) on host gpu03, launcher slurm, backend mpi".
  std::string describe() const;

 private:
  Runtime() = default;
  RuntimeInfo info_;
  bool mpi_started_ = false;
  bool group_ = false;  // made by split(): owns neither MPI nor the process's runtime slot
  std::unique_ptr<Communicator> world_, node_, nccl_;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace opine::dist
