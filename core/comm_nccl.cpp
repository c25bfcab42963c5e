// Collectives over NCCL for CUDA tensors, on the current torch CUDA stream (so they order with
// the kernels around them without synchronizing). bfloat16 / float16 reduce natively, the
// average is ncclAvg (integers: truncating division), bool reduces as max (or) / min (and).
#include "core/comm_nccl.h"

#include "core/error.h"

#if OPINE_HAVE_NCCL

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "core/comm_detail.h"

// Throw opine::Error (file:line, rank, host, the library's message) when a call fails.
#define OPINE_NCCL(call)                                                                      \
  do {                                                                                        \
    const ncclResult_t opine_nccl_rc_ = (call);                                               \
    if (opine_nccl_rc_ != ncclSuccess)                                                        \
      ::opine::dist::detail::throw_failure("NCCL", __FILE__, __LINE__, #call,                 \
                                           ::opine::dist::nccl_error_string(opine_nccl_rc_)); \
  } while (0)
#define OPINE_CUDA(call)                                                        \
  do {                                                                          \
    const cudaError_t opine_cuda_rc_ = (call);                                  \
    if (opine_cuda_rc_ != cudaSuccess)                                          \
      ::opine::dist::detail::throw_failure("CUDA", __FILE__, __LINE__, #call,   \
                                           cudaGetErrorString(opine_cuda_rc_)); \
  } while (0)

namespace opine::dist {
namespace {

std::string nccl_error_string(ncclResult_t rc) {
  std::string text = ncclGetErrorString(rc);
  // The last error's details ("Duplicate GPU detected", ...), when NCCL kept any.
  if (const char* last = ncclGetLastError(nullptr); last && *last)
    text += ::opine::detail::concat(" (", last, ")");
  return text;
}

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kHalf:
      return ncclFloat16;
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    case at::kByte:
    case at::kBool:
      return ncclUint8;
    default:
      break;
  }
  OPINE_ASSERT(false, "the NCCL communicator does not take ", t, " tensors (", detail::where(), ")");
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op, at::ScalarType t) {
  if (t == at::kBool) {
    OPINE_ASSERT(op != ReduceOp::kAvg, "no average of bool tensors (", detail::where(), ")");
    return op == ReduceOp::kMin ? ncclMin : ncclMax;
  }
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  OPINE_ASSERT(false, "unknown reduce op");
  return ncclSum;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int size, int device, const std::function<void(void*, size_t)>& broadcast)
      : rank_(rank), size_(size), device_(device) {
    ncclUniqueId id{};
    if (rank == 0) OPINE_NCCL(ncclGetUniqueId(&id));
    broadcast(&id, sizeof id);
    const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    OPINE_NCCL(ncclCommInitRank(&comm_, size, id, rank));
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& tensor, ReduceOp op) override {
    check(tensor, "all_reduce");
    bytes_moved_ += tensor.nbytes();
    if (tensor.numel() == 0) return;
    const c10::cuda::CUDAGuard guard(tensor.device());
    OPINE_NCCL(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(),
                             nccl_type(tensor.scalar_type()), nccl_op(op, tensor.scalar_type()), comm_,
                             stream()));
  }

  void all_gather(const at::Tensor& input, at::Tensor& output) override {
    detail::check_pair(input, output, "all_gather");
    check(input, "all_gather");
    const int64_t n = input.numel();
    OPINE_ASSERT(output.numel() == size_ * n, "all_gather over ", size_, " ranks: output holds ",
                 output.numel(), " elements for an input of ", n, " (", detail::where(), ")");
    bytes_moved_ += input.nbytes();
    if (n == 0) return;
    const c10::cuda::CUDAGuard guard(input.device());
    // NCCL allows one overlap: the input sitting at this rank's place in the output.
    const bool in_place = input.data_ptr() == static_cast<char*>(output.data_ptr()) + rank_ * input.nbytes();
    const at::Tensor source = !in_place && detail::overlaps(input, output) ? input.clone() : input;
    OPINE_NCCL(ncclAllGather(source.data_ptr(), output.data_ptr(), n, nccl_type(input.scalar_type()), comm_,
                             stream()));
  }

  void reduce_scatter(const at::Tensor& input, at::Tensor& output, ReduceOp op) override {
    detail::check_pair(input, output, "reduce_scatter");
    check(input, "reduce_scatter");
    const int64_t n = output.numel();
    OPINE_ASSERT(input.numel() == size_ * n, "reduce_scatter over ", size_, " ranks: input holds ",
                 input.numel(), " elements for an output of ", n, " (", detail::where(), ")");
    bytes_moved_ += input.nbytes();
    if (n == 0) return;
    const c10::cuda::CUDAGuard guard(input.device());
    const bool in_place = output.data_ptr() == static_cast<char*>(input.data_ptr()) + rank_ * output.nbytes();
    const at::Tensor source = !in_place && detail::overlaps(input, output) ? input.clone() : input;
    OPINE_NCCL(ncclReduceScatter(source.data_ptr(), output.data_ptr(), n, nccl_type(input.scalar_type()),
                                 nccl_op(op, input.scalar_type()), comm_, stream()));
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check(tensor, "broadcast");
    detail::check_root(root, size_);
    bytes_moved_ += tensor.nbytes();
    if (tensor.numel() == 0) return;
    const c10::cuda::CUDAGuard guard(tensor.device());
    OPINE_NCCL(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(),
                             nccl_type(tensor.scalar_type()), root, comm_, stream()));
  }

  // NCCL has none: a one-element all-reduce that every rank waits for.
  void barrier() override {
    const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    if (!token_.defined())
      token_ = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA, device_));
    OPINE_NCCL(ncclAllReduce(token_.data_ptr(), token_.data_ptr(), 1, ncclFloat32, ncclSum, comm_, stream()));
    OPINE_CUDA(cudaStreamSynchronize(stream()));
  }

 private:
  void check(const at::Tensor& t, const char* collective) const {
    detail::check_contiguous(t, collective);
    OPINE_ASSERT(t.is_cuda() && t.device().index() == device_, collective,
                 ": the NCCL communicator of cuda:", device_, " got a tensor on ", t.device(), " (",
                 detail::where(), ")");
    (void)nccl_type(t.scalar_type());  // the dtype check
  }
  cudaStream_t stream() const {
    return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream();
  }

  ncclComm_t comm_ = nullptr;
  int rank_, size_, device_;
  at::Tensor token_;
};

}  // namespace

bool nccl_compiled_in() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(
    int rank, int size, int device, const std::function<void(void*, size_t)>& broadcast_from_rank0) {
  return std::make_unique<NcclCommunicator>(rank, size, device, broadcast_from_rank0);
}

}  // namespace opine::dist

#else  // no NCCL

namespace opine::dist {

bool nccl_compiled_in() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(int, int, int,
                                                     const std::function<void(void*, size_t)>&) {
  OPINE_CHECK(false,
              "NCCL not compiled in: this opine was built without NCCL, so it cannot run collectives "
              "on CUDA tensors across processes");
  return nullptr;
}

}  // namespace opine::dist

#endif
