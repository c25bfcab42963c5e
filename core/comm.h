// Collectives behind one interface, with two back ends: MPI for CPU tensors and NCCL for CUDA
// tensors (its unique id travels over MPI). A single process gets a trivial communicator, so every
// code path runs the same on one CPU, one GPU, or many ranks under mpirun / srun.
//
// Every collective takes contiguous tensors of the same dtype and shape on every rank (a mismatch
// is a bug of the caller: OPINE_ASSERT). Dtypes: float32, float64, bfloat16, float16, int32, int64,
// uint8 (bool as uint8). MPI has no 16-bit floating-point reductions: the MPI back end reduces
// bfloat16/float16 in float32 and rounds once at the end. Every MPI/NCCL/CUDA call is checked;
// a failure throws opine::Error naming file:line, rank, host and the library's message.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>

namespace opine::dist {

enum class ReduceOp { kSum, kAvg, kMax, kMin };

// A collective in flight: wait() returns once its output is complete (and throws its error).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "self" (one process), "mpi" or "nccl".
  virtual std::string backend() const = 0;

  // In place: every rank ends with the reduction over ranks of `tensor`.
  virtual void all_reduce(at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) = 0;
  // output [size * input.numel()] (any shape with that many elements): rank r's input lands at
  // elements [r * n, (r + 1) * n).
  virtual void all_gather(const at::Tensor& input, at::Tensor& output) = 0;
  // Starts an all_gather and returns where the back end can (MPI: MPI_Iallgather), so the
  // transfer overlaps what the caller computes meanwhile; `input` and `output` must stay alive
  // and untouched until wait(). The default runs all_gather() and returns finished work (NCCL's
  // collectives are already asynchronous to the host on the current stream).
  virtual std::unique_ptr<Work> all_gather_async(const at::Tensor& input, at::Tensor& output);
  // input [size * n], output [n]: rank r gets the reduction over ranks of input[r * n, (r + 1) * n).
  virtual void reduce_scatter(const at::Tensor& input, at::Tensor& output, ReduceOp op = ReduceOp::kSum) = 0;
  // In place: every rank ends with `root`'s tensor.
  virtual void broadcast(at::Tensor& tensor, int root = 0) = 0;
  virtual void barrier() = 0;

  // Bytes this rank has handed to collectives as payload (input sizes), for benchmarks.
  int64_t bytes_moved() const { return bytes_moved_; }

 protected:
  int64_t bytes_moved_ = 0;
};

// The one-process communicator: collectives copy or leave tensors as they are.
std::unique_ptr<Communicator> make_self_communicator();

// Every rank's bytes to every rank, in rank order (any lengths; a CPU communicator). For
// results of unequal size: generated texts, prediction rows.
std::vector<std::string> all_gather_bytes(Communicator& comm, const std::string& local);

}  // namespace opine::dist
