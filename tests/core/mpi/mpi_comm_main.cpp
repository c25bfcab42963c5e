// The MPI communicator across real processes (ctest `mpi.comm`, mpirun -np 2): the Runtime starts
// MPI from Open MPI's variables (ctest `mpi.comm_singleton`: one process, OPINE_FORCE_MPI=1); for every
// dtype, every collective and op gives exactly what a formula of rank and index predicts; the node
// communicator, describe() and bytes_moved() agree with MPI; a wrong call throws an opine::Error naming rank
// and host. Exit status 1 on any failure.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/host.h"
#include "core/comm_detail.h"
#include "core/comm_mpi.h"
#include "core/error.h"
#include "core/runtime.h"

namespace {

using opine::dist::Communicator;
using opine::dist::ReduceOp;

int g_failures = 0;
int g_rank = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "mpi.comm: rank %d FAILED: %s\n", g_rank, what.c_str());
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

constexpr int64_t kPerRank = 37;  // elements each rank owns in gather / scatter

bool is_signed(at::ScalarType t) { return t != at::kByte && t != at::kBool; }

// Small integers (exact in every dtype, sums of a few ranks too); negative ones for signed types
// so that the integer average's truncation is tested.
double value(at::ScalarType t, int rank, int64_t i) {
  if (t == at::kBool) return ((rank + 1) * i + rank) % 3 == 0 ? 1 : 0;
  const double v = static_cast<double>(((rank + 1) * i + 3 * rank) % 13);
  return is_signed(t) ? v - 6 : v;
}

at::Tensor filled(at::ScalarType t, int rank, int64_t n, int64_t offset = 0) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = value(t, rank, i + offset);
  return at::tensor(v, at::kDouble).to(t);
}

// What reducing element i over all ranks gives, computed in double then cast like the result.
at::Tensor expected_reduce(at::ScalarType t, ReduceOp op, int size, int64_t n, int64_t offset = 0) {
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0, mx = value(t, 0, i + offset), mn = mx;
    for (int r = 0; r < size; ++r) {
      const double v = value(t, r, i + offset);
      sum += v;
      mx = std::max(mx, v);
      mn = std::min(mn, v);
    }
    switch (op) {
      case ReduceOp::kSum:
        out[i] = t == at::kBool ? (sum > 0) : sum;
        break;
      case ReduceOp::kMax:
        out[i] = mx;
        break;
      case ReduceOp::kMin:
        out[i] = mn;
        break;
      case ReduceOp::kAvg:
        out[i] = at::isFloatingType(t) ? sum / size : static_cast<double>(static_cast<int64_t>(sum) / size);
        break;
    }
  }
  return at::tensor(out, at::kDouble).to(t);
}

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

std::string name(at::ScalarType t, const std::string& what) {
  return std::string(c10::toString(t)) + " " + what;
}

void same(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  const bool ok = got.scalar_type() == want.scalar_type() && got.numel() == want.numel() &&
                  at::equal(got.flatten(), want.flatten());
  std::string detail;
  if (!ok && got.numel() == want.numel() && got.numel() > 0) {
    const auto bad = (got.flatten().to(at::kDouble) != want.flatten().to(at::kDouble)).nonzero();
    if (bad.numel() > 0) {
      const int64_t i = bad[0].item<int64_t>();
      detail = ": element " + std::to_string(i) + " is " + std::to_string(got.flatten()[i].item<double>()) +
               ", expected " + std::to_string(want.flatten()[i].item<double>());
    }
  }
  check(ok, what + detail);
}

void test_dtype(Communicator& c, at::ScalarType t) {
  const int rank = c.rank(), size = c.size();
  const int64_t n = size * kPerRank;
  for (auto op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    if (t == at::kBool && op == ReduceOp::kAvg) continue;  // no average of bools
    at::Tensor x = filled(t, rank, n).reshape({size, kPerRank});
    c.all_reduce(x, op);
    same(x, expected_reduce(t, op, size, n), name(t, std::string("all_reduce ") + op_name(op)));

    const at::Tensor in = filled(t, rank, n);
    at::Tensor out = at::full({kPerRank}, 99, at::TensorOptions().dtype(t));
    c.reduce_scatter(in, out, op);
    same(out, expected_reduce(t, op, size, kPerRank, rank * kPerRank),
         name(t, std::string("reduce_scatter ") + op_name(op)));
  }

  // all_gather, into an output of another shape, then in place (the input a view of the output).
  std::vector<at::Tensor> parts;
  for (int r = 0; r < size; ++r) parts.push_back(filled(t, r, kPerRank));
  const at::Tensor want = at::cat(parts);
  at::Tensor gathered = at::zeros({size, kPerRank}, at::TensorOptions().dtype(t));
  c.all_gather(filled(t, rank, kPerRank), gathered);
  same(gathered, want, name(t, "all_gather"));
  at::Tensor whole = at::zeros({n}, at::TensorOptions().dtype(t));
  at::Tensor mine = whole.narrow(0, rank * kPerRank, kPerRank);
  mine.copy_(filled(t, rank, kPerRank));
  c.all_gather(mine, whole);
  same(whole, want, name(t, "all_gather in place"));
  // Started, overlapped with a blocking collective, then waited for (layer prefetch does this).
  at::Tensor pending = at::zeros({n}, at::TensorOptions().dtype(t));
  const at::Tensor source = filled(t, rank, kPerRank);
  std::unique_ptr<opine::dist::Work> work = c.all_gather_async(source, pending);
  c.barrier();
  work->wait();
  same(pending, want, name(t, "all_gather_async"));

  // broadcast from the last rank (1 of 2), over a 2-D tensor.
  const int root = size - 1;
  at::Tensor b = filled(t, rank, n).reshape({kPerRank, size});
  c.broadcast(b, root);
  same(b, filled(t, root, n).reshape({kPerRank, size}),
       name(t, "broadcast from root " + std::to_string(root)));
  c.barrier();
}

void test_bytes_and_errors(Communicator& c) {
  const int64_t before = c.bytes_moved();
  at::Tensor f = at::ones({100}, at::kFloat);
  c.all_reduce(f);
  at::Tensor h = at::ones({10}, at::kBFloat16);
  c.broadcast(h, 0);
  at::Tensor g = at::empty({c.size() * 100}, at::kFloat);
  c.all_gather(f, g);
  c.barrier();
  check(c.bytes_moved() - before == 400 + 20 + 400,
        "bytes_moved counted " + std::to_string(c.bytes_moved() - before) + ", expected 820");

  const std::string host = opine::host_name();
  const std::string where = "rank " + std::to_string(c.rank());
  // The communicator's own check, identical on every rank (no rank waits for another).
  try {
    c.broadcast(f, c.size());
    check(false, "broadcast from root " + std::to_string(c.size()) + " accepted");
  } catch (const opine::Error& e) {
    check(contains(e.what(), where) && contains(e.what(), host),
          std::string("root error names rank and host: ") + e.what());
  }
  // MPI's own error through OPINE_MPI, on a communicator that returns errors.
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  try {
    int x = 0;
    OPINE_MPI(MPI_Bcast(&x, 1, MPI_INT, c.size() + 5, dup));
    check(false, "MPI_Bcast with root out of range succeeded");
  } catch (const opine::Error& e) {
    const std::string text = e.what();
    check(contains(text, "MPI call MPI_Bcast(") && contains(text, "mpi_comm_main.cpp:") &&
              contains(text, "on " + where + " (host " + host + ")") && contains(text, "MPI_ERR_ROOT"),
          "MPI error message: " + text);
  }
  MPI_Comm_free(&dup);
}

void test_runtime(opine::dist::Runtime& rt) {
  int mpi_rank = -1, mpi_size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
  check(rt.rank() == mpi_rank && rt.world_size() == mpi_size, "runtime rank/size agree with MPI");
  // Under mpirun; else a singleton that OPINE_FORCE_MPI=1 started (ctest mpi.comm_singleton).
  const std::string launcher = std::getenv("OMPI_COMM_WORLD_RANK") ? "openmpi" : "none";
  check(rt.info().launcher == launcher, "launcher is " + launcher + ", got " + rt.info().launcher);
  check(rt.world().backend() == "mpi" && rt.world().rank() == mpi_rank && rt.world().size() == mpi_size,
        "world communicator");
  check(&rt.for_device(at::Device(at::kCPU)) == &rt.world(), "for_device(cpu) is the world");
  // Every rank of this test runs on one host.
  MPI_Comm shared = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, mpi_rank, MPI_INFO_NULL, &shared);
  int local_rank = -1, local_size = -1;
  MPI_Comm_rank(shared, &local_rank);
  MPI_Comm_size(shared, &local_size);
  MPI_Comm_free(&shared);
  Communicator& node = rt.node();
  check(node.size() == local_size && node.rank() == local_rank && rt.info().local_size == local_size &&
            rt.local_rank() == local_rank,
        "node communicator: " + std::to_string(node.rank()) + "/" + std::to_string(node.size()) +
            ", MPI says " + std::to_string(local_rank) + "/" + std::to_string(local_size));
  check(rt.info().num_nodes == 1 && rt.info().node_index == 0, "one node");
  at::Tensor one = at::ones({3}, at::kLong);
  node.all_reduce(one);
  check(at::equal(one, at::full({3}, local_size, at::kLong)), "node all_reduce counts the node's ranks");
  const std::string line = rt.describe();
  const std::string want = "rank " + std::to_string(mpi_rank) + "/" + std::to_string(mpi_size) + " (local " +
                           std::to_string(local_rank) + "/" + std::to_string(local_size) + ") on host " +
                           opine::host_name() + ", launcher " + launcher + ", backend mpi";
  check(line == want, "describe(): " + line + " (expected " + want + ")");
  check(rt.bind_device("cpu") == at::Device(at::kCPU), "bind_device(cpu)");
}

}  // namespace

int main(int argc, char** argv) {
  int size = 1;
  {
    std::unique_ptr<opine::dist::Runtime> rt;
    try {
      rt = opine::dist::Runtime::start(&argc, &argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mpi.comm: Runtime::start failed: %s\n", e.what());
      return 1;
    }
    g_rank = rt->rank();
    size = rt->world_size();
    try {
      test_runtime(*rt);
      for (auto t :
           {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf, at::kInt, at::kLong, at::kByte, at::kBool})
        test_dtype(rt->world(), t);
      test_bytes_and_errors(rt->world());
    } catch (const std::exception& e) {
      check(false, std::string("exception: ") + e.what());
    }
    int failures = g_failures, total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    g_failures = total;
  }  // the Runtime finalizes MPI
  if (g_failures == 0 && g_rank == 0)
    std::printf("mpi.comm: %d ranks, 8 dtypes x all collectives exact, node/describe/bytes/errors right\n",
                size);
  return g_failures == 0 ? 0 : 1;
}
