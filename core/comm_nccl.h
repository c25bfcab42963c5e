// The NCCL communicator (internal: core/runtime.cpp builds it). Always declared; without NCCL
// (OPINE_HAVE_NCCL unset) nccl_compiled_in() is false and make_nccl_communicator throws.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/comm.h"

namespace opine::dist {

bool nccl_compiled_in();

// Every rank calls it (ncclCommInitRank is collective). Rank 0 draws the unique id and
// `broadcast_from_rank0(data, bytes)` must hand its bytes to every rank (MPI_Bcast over the world).
// Collectives run on the current torch CUDA stream of `device`.
std::unique_ptr<Communicator> make_nccl_communicator(
    int rank, int size, int device, const std::function<void(void*, size_t)>& broadcast_from_rank0);

}  // namespace opine::dist
