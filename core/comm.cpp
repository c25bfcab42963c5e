// The one-process communicator: every collective over one rank is a copy or nothing. It takes
// tensors on any device, so a single GPU needs no NCCL.
#include "core/comm.h"

#include <algorithm>
#include <cstring>

#include "core/comm_detail.h"
#include "core/error.h"

namespace opine::dist {
namespace {

class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }

  // The reduction over one rank is the tensor itself, for every op (the average divides by 1).
  void all_reduce(at::Tensor& tensor, ReduceOp) override {
    detail::check_contiguous(tensor, "all_reduce");
    bytes_moved_ += tensor.nbytes();
  }
  void all_gather(const at::Tensor& input, at::Tensor& output) override {
    detail::check_pair(input, output, "all_gather");
    OPINE_ASSERT(output.numel() == input.numel(), "all_gather over 1 rank: output holds ", output.numel(),
                 " elements for an input of ", input.numel());
    bytes_moved_ += input.nbytes();
    copy(input, output);
  }
  void reduce_scatter(const at::Tensor& input, at::Tensor& output, ReduceOp) override {
    detail::check_pair(input, output, "reduce_scatter");
    OPINE_ASSERT(output.numel() == input.numel(), "reduce_scatter over 1 rank: output holds ", output.numel(),
                 " elements for an input of ", input.numel());
    bytes_moved_ += input.nbytes();
    copy(input, output);
  }
  void broadcast(at::Tensor& tensor, int root) override {
    detail::check_contiguous(tensor, "broadcast");
    detail::check_root(root, 1);
    bytes_moved_ += tensor.nbytes();
  }
  void barrier() override {}

 private:
  // Shapes may differ (the contract counts elements only).
  static void copy(const at::Tensor& input, at::Tensor& output) {
    if (input.data_ptr() != output.data_ptr()) output.view(input.sizes()).copy_(input);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_self_communicator() { return std::make_unique<SelfCommunicator>(); }

namespace {
struct DoneWork final : Work {
  void wait() override {}
};
}  // namespace

std::unique_ptr<Work> Communicator::all_gather_async(const at::Tensor& input, at::Tensor& output) {
  all_gather(input, output);
  return std::make_unique<DoneWork>();
}

}  // namespace opine::dist

namespace opine::dist {

std::vector<std::string> all_gather_bytes(Communicator& comm, const std::string& local) {
  const int n = comm.size();
  at::Tensor length = at::tensor({int64_t(local.size())}, at::kLong);
  at::Tensor lengths = at::empty({n}, at::kLong);
  comm.all_gather(length, lengths);
  const int64_t width = std::max<int64_t>(lengths.max().item<int64_t>(), 1);
  at::Tensor mine = at::zeros({width}, at::kByte);
  std::memcpy(mine.data_ptr<uint8_t>(), local.data(), local.size());
  at::Tensor all = at::empty({n * width}, at::kByte);
  comm.all_gather(mine, all);
  std::vector<std::string> out;
  const char* bytes = reinterpret_cast<const char*>(all.data_ptr<uint8_t>());
  for (int r = 0; r < n; ++r) out.emplace_back(bytes + r * width, size_t(lengths[r].item<int64_t>()));
  return out;
}

}  // namespace opine::dist
