// Communicators and the runtime in one process: the self communicator's semantics, the launcher
// variables of Open MPI / PMI / PMIx / Slurm, the runtime without a launcher, how a failed library
// call is reported; CommGpu runs the NCCL communicator on one GPU (skipped without one).
// Several ranks: tests/core/mpi/mpi_comm_main.cpp (ctest mpi.comm).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/comm_detail.h"
#include "core/error.h"
#include "core/host.h"
#include "core/runtime.h"
#if OPINE_HAVE_MPI
#include "core/comm_mpi.h"
#endif

namespace opine::dist {
namespace {

using Vars = std::map<std::string, std::string>;

// Clears every variable the runtime reads, sets `values`, and puts everything back afterwards (so
// the tests behave the same when ctest itself runs under mpirun or inside a Slurm job).
class ScopedEnv {
 public:
  explicit ScopedEnv(const Vars& values = {}) {
    for (const char* name : kNames) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      unsetenv(name);
    }
    for (const auto& [name, value] : values) {
      if (!saved_.count(name) && !std::getenv(name.c_str())) saved_.emplace(name, std::nullopt);
      setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const char* name : kNames) unsetenv(name);
    for (const auto& [name, value] : saved_) {
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }

 private:
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_RANK",
                                           "OMPI_COMM_WORLD_SIZE",
                                           "OMPI_COMM_WORLD_LOCAL_RANK",
                                           "OMPI_COMM_WORLD_LOCAL_SIZE",
                                           "PMI_RANK",
                                           "PMI_SIZE",
                                           "MPI_LOCALRANKID",
                                           "MPI_LOCALNRANKS",
                                           "PMIX_RANK",
                                           "SLURM_PROCID",
                                           "SLURM_LOCALID",
                                           "SLURM_NTASKS",
                                           "SLURM_STEP_NUM_TASKS",
                                           "SLURM_NODEID",
                                           "SLURM_NNODES",
                                           "SLURM_STEP_NUM_NODES",
                                           "SLURM_TASKS_PER_NODE",
                                           "SLURM_STEP_TASKS_PER_NODE",
                                           "OPINE_FORCE_MPI"};
  std::map<std::string, std::optional<std::string>> saved_;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- the self communicator ----

TEST(SelfComm, IsOneRank) {
  auto comm = make_self_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->backend(), "self");
  EXPECT_EQ(comm->bytes_moved(), 0);
}

TEST(SelfComm, AllReduceLeavesTheTensorForEveryOp) {
  auto comm = make_self_communicator();
  for (auto op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    at::Tensor f = at::arange(6, at::kFloat).reshape({2, 3});
    at::Tensor i = at::arange(-3, 4, at::kLong);
    comm->all_reduce(f, op);
    comm->all_reduce(i, op);
    EXPECT_TRUE(at::equal(f, at::arange(6, at::kFloat).reshape({2, 3})));
    EXPECT_TRUE(at::equal(i, at::arange(-3, 4, at::kLong)));
  }
  EXPECT_EQ(comm->bytes_moved(), 4 * (6 * 4 + 7 * 8));
}

TEST(SelfComm, GatherAndScatterCopy) {
  auto comm = make_self_communicator();
  const at::Tensor input = at::arange(6, at::kInt);
  at::Tensor gathered = at::zeros({2, 3}, at::kInt);
  comm->all_gather(input, gathered);
  EXPECT_TRUE(at::equal(gathered.flatten(), input));
  at::Tensor scattered = at::zeros({6}, at::kInt);
  comm->reduce_scatter(input, scattered, ReduceOp::kAvg);
  EXPECT_TRUE(at::equal(scattered, input));
  EXPECT_EQ(comm->bytes_moved(), 2 * 6 * 4);
  at::Tensor wrong = at::zeros({5}, at::kInt);
  EXPECT_THROW(comm->all_gather(input, wrong), Error);
  at::Tensor other_dtype = at::zeros({6}, at::kLong);
  EXPECT_THROW(comm->reduce_scatter(input, other_dtype), Error);
}

TEST(SelfComm, BroadcastAndBarrierDoNothing) {
  auto comm = make_self_communicator();
  at::Tensor t = at::arange(4, at::kBFloat16);
  comm->broadcast(t, 0);
  comm->barrier();
  EXPECT_TRUE(at::equal(t, at::arange(4, at::kBFloat16)));
  try {
    comm->broadcast(t, 1);
    FAIL() << "root 1 of one rank accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "root 1")) << e.what();
    EXPECT_TRUE(contains(e.what(), "on host " + opine::host_name())) << e.what();
  }
  at::Tensor strided = at::zeros({4, 4}).t();
  EXPECT_THROW(comm->all_reduce(strided), Error);
}

// ---- the launchers' variables ----

TEST(CommLauncherEnv, NoneIsOneProcess) {
  ScopedEnv env;
  const RuntimeInfo info = info_from_environment();
  EXPECT_EQ(info.launcher, "none");
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(info.world_size, 1);
  EXPECT_EQ(info.local_rank, 0);
  EXPECT_EQ(info.local_size, 1);
  EXPECT_EQ(info.host, opine::host_name());
}

TEST(CommLauncherEnv, OpenMpi) {
  // Slurm's variables around an mpirun inside an allocation must not win.
  ScopedEnv env(Vars{{"OMPI_COMM_WORLD_RANK", "3"},
                     {"OMPI_COMM_WORLD_SIZE", "4"},
                     {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                     {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                     {"SLURM_PROCID", "0"},
                     {"SLURM_NTASKS", "1"}});
  const RuntimeInfo info = info_from_environment();
  EXPECT_EQ(info.launcher, "openmpi");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.world_size, 4);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.local_size, 2);
}

TEST(CommLauncherEnv, Pmi) {
  ScopedEnv env(
      Vars{{"PMI_RANK", "5"}, {"PMI_SIZE", "6"}, {"MPI_LOCALRANKID", "2"}, {"MPI_LOCALNRANKS", "3"}});
  const RuntimeInfo info = info_from_environment();
  EXPECT_EQ(info.launcher, "pmi");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 6);
  EXPECT_EQ(info.local_rank, 2);
  EXPECT_EQ(info.local_size, 3);
}

TEST(CommLauncherEnv, PmixUnderSrun) {
  // Seven tasks: two on each of the first three nodes, one on the fourth (this is the fourth).
  ScopedEnv env(Vars{{"PMIX_RANK", "6"},
                     {"SLURM_PROCID", "6"},
                     {"SLURM_NTASKS", "7"},
                     {"SLURM_LOCALID", "0"},
                     {"SLURM_NODEID", "3"},
                     {"SLURM_NNODES", "4"},
                     {"SLURM_TASKS_PER_NODE", "2(x3),1"}});
  const RuntimeInfo info = info_from_environment();
  EXPECT_EQ(info.launcher, "pmix");
  EXPECT_EQ(info.rank, 6);
  EXPECT_EQ(info.world_size, 7);
  EXPECT_EQ(info.local_rank, 0);
  EXPECT_EQ(info.local_size, 1);
  EXPECT_EQ(info.node_index, 3);
  EXPECT_EQ(info.num_nodes, 4);
}

TEST(CommLauncherEnv, Slurm) {
  // The step's counts win over the allocation's.
  ScopedEnv env(Vars{{"SLURM_PROCID", "5"},
                     {"SLURM_NTASKS", "16"},
                     {"SLURM_STEP_NUM_TASKS", "8"},
                     {"SLURM_LOCALID", "1"},
                     {"SLURM_NODEID", "2"},
                     {"SLURM_NNODES", "4"},
                     {"SLURM_STEP_TASKS_PER_NODE", "2(x4)"}});
  const RuntimeInfo info = info_from_environment();
  EXPECT_EQ(info.launcher, "slurm");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.local_size, 2);
  EXPECT_EQ(info.node_index, 2);
  EXPECT_EQ(info.num_nodes, 4);
}

TEST(CommLauncherEnv, BadValuesAreErrors) {
  {
    ScopedEnv env(Vars{{"OMPI_COMM_WORLD_RANK", "one"}});
    EXPECT_THROW(info_from_environment(), Error);
  }
  {
    ScopedEnv env(Vars{{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}});
    EXPECT_THROW(info_from_environment(), Error);
  }
  ScopedEnv env(Vars{{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}});
  EXPECT_EQ(info_from_environment().local_size, 1);  // unknown: the safe value
}

// ---- the runtime without a launcher ----

TEST(CommRuntime, WithoutLauncherIsOneProcess) {
  ScopedEnv env;
  auto rt = Runtime::start(nullptr, nullptr);
  EXPECT_EQ(rt->rank(), 0);
  EXPECT_EQ(rt->world_size(), 1);
  EXPECT_FALSE(rt->distributed());
  EXPECT_EQ(rt->world().backend(), "self");
  EXPECT_EQ(rt->node().size(), 1);
  EXPECT_EQ(&rt->for_device(at::Device(at::kCPU)), &rt->world());
  EXPECT_EQ(rt->bind_device("cpu"), at::Device(at::kCPU));
  EXPECT_THROW(rt->bind_device("tpu"), Error);
  EXPECT_THROW(rt->bind_device("cuda:x"), Error);
  if (!at::hasCUDA()) {
    EXPECT_THROW(rt->bind_device("cuda"), Error);
  }
  const std::string line = rt->describe();
  EXPECT_TRUE(contains(line, "rank 0/1 (local 0/1) on host " + opine::host_name())) << line;
  EXPECT_TRUE(contains(line, "launcher none, backend self")) << line;
}

TEST(CommRuntime, OnlyOneAtATime) {
  ScopedEnv env;
  {
    auto rt = Runtime::start(nullptr, nullptr);
    EXPECT_THROW(Runtime::start(nullptr, nullptr), Error);
  }
  EXPECT_NO_THROW(Runtime::start(nullptr, nullptr));
}

TEST(CommRuntime, ForceMpiOffRunsAlone) {
  // A launcher's variables, but OPINE_FORCE_MPI=0: MPI is not started.
  ScopedEnv env(Vars{{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"OPINE_FORCE_MPI", "0"}});
  auto rt = Runtime::start(nullptr, nullptr);
  EXPECT_EQ(rt->world_size(), 1);
  EXPECT_EQ(rt->world().backend(), "self");
  EXPECT_EQ(rt->info().launcher, "openmpi");
}

TEST(CommRuntime, ForceMpiNeedsZeroOrOne) {
  ScopedEnv env(Vars{{"OPINE_FORCE_MPI", "yes"}});
  EXPECT_THROW(Runtime::start(nullptr, nullptr), Error);
}

// ---- how a failed library call reads ----

TEST(CommErrors, NameFileLineRankHostAndMessage) {
  detail::set_process_rank(3);
  const std::string text =
      detail::failure_message("MPI", "/somewhere/opine/core/comm_mpi.cpp", 88,
                              "MPI_Bcast(p, n, type, 9, comm)", "MPI_ERR_ROOT: invalid root");
  detail::set_process_rank(-1);
  EXPECT_EQ(text, "MPI call MPI_Bcast(p, n, type, 9, comm) failed at core/comm_mpi.cpp:88 on rank 3 (host " +
                      opine::host_name() + "): MPI_ERR_ROOT: invalid root");
  try {
    detail::throw_failure("NCCL", __FILE__, __LINE__, "ncclAllReduce(...)", "unhandled system error");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_TRUE(contains(e.what(), "NCCL call ncclAllReduce(...) failed at ")) << e.what();
    EXPECT_TRUE(contains(e.what(), "test_comm.cpp:")) << e.what();
    EXPECT_TRUE(contains(e.what(), "): unhandled system error")) << e.what();
  }
}

TEST(CommErrors, RankComesFromTheLauncherBeforeMpi) {
  ScopedEnv env(Vars{{"SLURM_PROCID", "7"}, {"SLURM_NTASKS", "8"}});
  EXPECT_EQ(detail::where(), "rank 7 on host " + opine::host_name());
}

#if OPINE_HAVE_MPI
TEST(CommErrors, MpiMacroThrowsWithMpiMessage) {
  // The "call" is just a failing return code; MPI is not running in this process, so the message
  // is the code (mpi.comm checks MPI's own text).
  try {
    OPINE_MPI(MPI_ERR_ROOT);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "MPI call MPI_ERR_ROOT failed at ")) << e.what();
    EXPECT_TRUE(contains(e.what(), "MPI error code " + std::to_string(MPI_ERR_ROOT))) << e.what();
  }
}
#endif

// ---- NCCL on one GPU ----

TEST(CommGpu, NcclOnOneRank) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  ScopedEnv env;
  auto rt = Runtime::start(nullptr, nullptr);
  const at::Device device = rt->bind_device("cuda");
  EXPECT_EQ(device, at::Device(at::kCUDA, 0));
  Communicator& comm = rt->for_device(device);
#if OPINE_HAVE_NCCL
  EXPECT_EQ(comm.backend(), "nccl");
#endif
  EXPECT_EQ(&rt->for_device(at::Device(at::kCUDA)), &comm);
  EXPECT_EQ(comm.size(), 1);
  const auto on_gpu = [&](at::ScalarType t) { return at::TensorOptions().dtype(t).device(device); };
  for (auto type : {at::kFloat, at::kBFloat16, at::kHalf, at::kLong, at::kByte}) {
    const at::Tensor values = at::arange(12, on_gpu(type));
    for (auto op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
      at::Tensor t = values.clone();
      comm.all_reduce(t, op);
      EXPECT_TRUE(at::equal(t.cpu(), values.cpu())) << type;
    }
    at::Tensor gathered = at::zeros({3, 4}, on_gpu(type));
    comm.all_gather(values, gathered);
    EXPECT_TRUE(at::equal(gathered.flatten().cpu(), values.cpu())) << type;
    at::Tensor scattered = at::zeros({12}, on_gpu(type));
    comm.reduce_scatter(values, scattered, ReduceOp::kSum);
    EXPECT_TRUE(at::equal(scattered.cpu(), values.cpu())) << type;
    at::Tensor b = values.clone();
    comm.broadcast(b, 0);
    EXPECT_TRUE(at::equal(b.cpu(), values.cpu())) << type;
  }
  comm.barrier();
  EXPECT_GT(comm.bytes_moved(), 0);
  at::Tensor on_cpu = at::zeros({4});
  EXPECT_THROW(comm.all_reduce(on_cpu), Error);
}

}  // namespace
}  // namespace opine::dist
