// Collectives over MPI for CPU tensors.
//
// bfloat16 / float16 travel as raw 16-bit words where nothing is computed (gather, broadcast); MPI
// has no arithmetic on them, so reductions run in float32 and round once at the end. The average
// is the sum divided by the number of ranks: integers divide with truncation toward zero (as NCCL
// does) after a sum that wraps like the type. bool reduces as logical or (sum, max) / and (min).
// Counts above what an MPI int holds are split into several calls where the result allows it.
#if OPINE_HAVE_MPI

#include "core/comm_mpi.h"

#include <algorithm>
#include <climits>

#include "core/error.h"

namespace opine::dist {
namespace detail {

std::string mpi_error_string(int code) {
  // MPI_Error_string is one of the calls that abort outside MPI_Init .. MPI_Finalize.
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    return ::opine::detail::concat("MPI error code ", code, " (MPI not running)");
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return ::opine::detail::concat("MPI error code ", code);
  return std::string(text, length);
}

}  // namespace detail

namespace {

// Elements per call of the chunked collectives (below INT_MAX, a multiple of every element size).
constexpr int64_t kMaxCount = int64_t{1} << 30;

bool is_16bit_float(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }

// How the tensor's bytes travel when nothing is computed on them.
MPI_Datatype raw_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    case at::kByte:
    case at::kBool:
      return MPI_UINT8_T;
    case at::kBFloat16:
    case at::kHalf:
      return MPI_UINT16_T;
    default:
      break;
  }
  OPINE_ASSERT(false, "the MPI communicator does not take ", t, " tensors (", detail::where(), ")");
  return MPI_DATATYPE_NULL;
}

MPI_Op reduce_op(ReduceOp op, at::ScalarType t) {
  if (t == at::kBool) {
    OPINE_ASSERT(op != ReduceOp::kAvg, "no average of bool tensors (", detail::where(), ")");
    return op == ReduceOp::kMin ? MPI_BAND : MPI_BOR;
  }
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  OPINE_ASSERT(false, "unknown reduce op");
  return MPI_OP_NULL;
}

void divide(at::Tensor& sum, int size) {
  if (at::isFloatingType(sum.scalar_type()))
    sum.div_(size);
  else
    sum.div_(size, "trunc");
}

void check_cpu(const at::Tensor& t, const char* collective) {
  OPINE_ASSERT(t.device().is_cpu(), collective, ": the MPI communicator takes CPU tensors, not ", t.device(),
               " (use Runtime::for_device) (", detail::where(), ")");
  (void)raw_type(t.scalar_type());  // the dtype check
}

// An MPI_Iallgather in flight; keeps its buffers alive until it completes.
struct MpiWork final : Work {
  MPI_Request request = MPI_REQUEST_NULL;
  at::Tensor source, output;
  void wait() override {
    if (request == MPI_REQUEST_NULL) return;
    OPINE_MPI(MPI_Wait(&request, MPI_STATUS_IGNORE));
  }
  ~MpiWork() override {
    // Abandoned (an exception unwound past it): let it finish before its buffers go.
    if (request != MPI_REQUEST_NULL) MPI_Wait(&request, MPI_STATUS_IGNORE);
  }
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    OPINE_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    OPINE_MPI(MPI_Comm_rank(comm_, &rank_));
    OPINE_MPI(MPI_Comm_size(comm_, &size_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce(at::Tensor& tensor, ReduceOp op) override {
    detail::check_contiguous(tensor, "all_reduce");
    check_cpu(tensor, "all_reduce");
    bytes_moved_ += tensor.nbytes();
    const at::ScalarType type = tensor.scalar_type();
    at::Tensor work = is_16bit_float(type) ? tensor.to(at::kFloat) : tensor;
    const MPI_Datatype dtype = raw_type(work.scalar_type());
    const MPI_Op mop = reduce_op(op, type);
    auto* base = static_cast<char*>(work.data_ptr());
    const int64_t n = work.numel(), element = work.element_size();
    for (int64_t done = 0; done < n; done += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - done));
      OPINE_MPI(MPI_Allreduce(MPI_IN_PLACE, base + done * element, count, dtype, mop, comm_));
    }
    if (op == ReduceOp::kAvg) divide(work, size_);
    if (!work.is_same(tensor)) tensor.copy_(work);
  }

  void all_gather(const at::Tensor& input, at::Tensor& output) override { all_gather_async(input, output)->wait(); }

  std::unique_ptr<Work> all_gather_async(const at::Tensor& input, at::Tensor& output) override {
    detail::check_pair(input, output, "all_gather");
    check_cpu(input, "all_gather");
    const int64_t n = input.numel();
    OPINE_ASSERT(output.numel() == size_ * n, "all_gather over ", size_, " ranks: output holds ",
                 output.numel(), " elements for an input of ", n, " (", detail::where(), ")");
    OPINE_ASSERT(n <= INT_MAX, "all_gather of ", n, " elements per rank: more than MPI counts (",
                 detail::where(), ")");
    bytes_moved_ += input.nbytes();
    auto work = std::make_unique<MpiWork>();
    if (n == 0) return work;
    // MPI forbids overlapping send and receive buffers (a shard that is a view of the output).
    work->source = detail::overlaps(input, output) ? input.clone() : input;
    work->output = output;
    const MPI_Datatype dtype = raw_type(input.scalar_type());
    OPINE_MPI(MPI_Iallgather(work->source.data_ptr(), static_cast<int>(n), dtype, output.data_ptr(),
                             static_cast<int>(n), dtype, comm_, &work->request));
    return work;
  }

  void reduce_scatter(const at::Tensor& input, at::Tensor& output, ReduceOp op) override {
    detail::check_pair(input, output, "reduce_scatter");
    check_cpu(input, "reduce_scatter");
    const int64_t n = output.numel();
    OPINE_ASSERT(input.numel() == size_ * n, "reduce_scatter over ", size_, " ranks: input holds ",
                 input.numel(), " elements for an output of ", n, " (", detail::where(), ")");
    OPINE_ASSERT(n <= INT_MAX, "reduce_scatter of ", n, " elements per rank: more than MPI counts (",
                 detail::where(), ")");
    bytes_moved_ += input.nbytes();
    if (n == 0) return;
    const at::ScalarType type = input.scalar_type();
    at::Tensor source, target;
    if (is_16bit_float(type)) {
      source = input.to(at::kFloat);
      target = at::empty({n}, input.options().dtype(at::kFloat));
    } else {
      source = detail::overlaps(input, output) ? input.clone() : input;
      target = output;
    }
    OPINE_MPI(MPI_Reduce_scatter_block(source.data_ptr(), target.data_ptr(), static_cast<int>(n),
                                       raw_type(source.scalar_type()), reduce_op(op, type), comm_));
    if (op == ReduceOp::kAvg) divide(target, size_);
    if (!target.is_same(output)) output.view({n}).copy_(target);
  }

  void broadcast(at::Tensor& tensor, int root) override {
    detail::check_contiguous(tensor, "broadcast");
    check_cpu(tensor, "broadcast");
    detail::check_root(root, size_);
    bytes_moved_ += tensor.nbytes();
    const MPI_Datatype dtype = raw_type(tensor.scalar_type());
    auto* base = static_cast<char*>(tensor.data_ptr());
    const int64_t n = tensor.numel(), element = tensor.element_size();
    for (int64_t done = 0; done < n; done += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - done));
      OPINE_MPI(MPI_Bcast(base + done * element, count, dtype, root, comm_));
    }
  }

  void barrier() override { OPINE_MPI(MPI_Barrier(comm_)); }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

}  // namespace opine::dist

#endif  // OPINE_HAVE_MPI
