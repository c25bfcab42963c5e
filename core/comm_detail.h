// Internals shared by the communicators and the runtime (not part of the interface): how a
// failed MPI / NCCL / CUDA call is reported, and the argument checks every back end makes.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace opine::dist::detail {

// This process's rank for messages: what the Runtime learned from MPI once it started, before
// that the launcher's variable, else 0.
int process_rank();
void set_process_rank(int rank);

// "rank 1 on host gpu03"
std::string where();

// "MPI call MPI_Bcast(...) failed at core/comm_mpi.cpp:88 on rank 1 (host gpu03): MPI_ERR_ROOT: invalid root"
std::string failure_message(const char* library, const char* file, int line, const char* call,
                            const std::string& what);
// Throws opine::Error of kind kIo (communication is I/O to the other ranks: usually the network
// or the launcher, not a bug) with failure_message().
[[noreturn]] void throw_failure(const char* library, const char* file, int line, const char* call,
                                const std::string& what);

// Argument checks (a violation is the caller's bug: opine::Error kInternal, naming rank and host).
void check_contiguous(const at::Tensor& t, const char* collective);
void check_pair(const at::Tensor& input, const at::Tensor& output, const char* collective);
void check_root(int root, int size);
// Whether the two tensors' bytes overlap (collective libraries forbid most aliasing).
bool overlaps(const at::Tensor& a, const at::Tensor& b);

}  // namespace opine::dist::detail
