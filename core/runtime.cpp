// The process's place in the job (see runtime.h): the launcher's variables, MPI start-up and
// shut-down, the world / node / device communicators, device binding.
//
// OPINE_FORCE_MPI=1 starts MPI without a launcher (a singleton, for tests); OPINE_FORCE_MPI=0
// never starts it (each process runs alone, e.g. a plain command inside a Slurm batch script).
#include "core/runtime.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <initializer_list>
#include <optional>

#include "core/comm_detail.h"
#include "core/comm_nccl.h"
#include "core/error.h"
#include "core/host.h"
#include "core/log.h"

#if OPINE_HAVE_MPI
#include "core/comm_mpi.h"
#endif
#ifdef OPINE_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace opine::dist {
namespace {

std::atomic<bool> g_runtime_alive{false};
std::atomic<bool> g_abort_pending{false};  // a distributed runtime unwound by an error

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

std::optional<int> parse_int(const std::string& text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The first of `names` that is set, as a number (a set variable that is not one is an error).
std::optional<int> first_int(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto text = env(name)) {
      const auto value = parse_int(*text);
      OPINE_CHECK(value && *value >= 0, "launcher variable ", name, "=", *text, " is not a rank or a count");
      return value;
    }
  }
  return std::nullopt;
}

// Slurm writes tasks per node as "2(x3),1": two tasks on each of three nodes, then one. The count
// for node `node`, if the variable is there and says.
std::optional<int> slurm_tasks_on_node(int node) {
  auto text = env("SLURM_STEP_TASKS_PER_NODE");
  if (!text) text = env("SLURM_TASKS_PER_NODE");
  if (!text) return std::nullopt;
  size_t at = 0;
  int first_node = 0;
  while (at < text->size()) {
    size_t end = text->find(',', at);
    if (end == std::string::npos) end = text->size();
    const std::string entry = text->substr(at, end - at);
    const size_t paren = entry.find("(x");
    const auto tasks = parse_int(entry.substr(0, paren));
    const auto repeat = paren == std::string::npos
                            ? std::optional<int>(1)
                            : parse_int(entry.substr(paren + 2, entry.size() - paren - 3));
    if (!tasks || !repeat) return std::nullopt;  // a form we do not know: say nothing
    if (node < first_node + *repeat) return tasks;
    first_node += *repeat;
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace

RuntimeInfo info_from_environment() {
  RuntimeInfo info;
  info.host = host_name();
  std::optional<int> rank, size, local_rank, local_size, node, nodes;
  // Open MPI first: its mpirun inside a Slurm allocation leaves Slurm's variables around too.
  if ((rank = first_int({"OMPI_COMM_WORLD_RANK"}))) {
    info.launcher = "openmpi";
    size = first_int({"OMPI_COMM_WORLD_SIZE"});
    local_rank = first_int({"OMPI_COMM_WORLD_LOCAL_RANK"});
    local_size = first_int({"OMPI_COMM_WORLD_LOCAL_SIZE"});
  } else if ((rank = first_int({"PMIX_RANK"}))) {
    // srun --mpi=pmix: PMIx itself exports no size; Slurm's variables say the rest.
    info.launcher = "pmix";
    size = first_int({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"});
    local_rank = first_int({"SLURM_LOCALID"});
    node = first_int({"SLURM_NODEID"});
    nodes = first_int({"SLURM_STEP_NUM_NODES", "SLURM_NNODES"});
  } else if ((rank = first_int({"PMI_RANK"}))) {
    // MPICH's hydra (MPI_LOCALRANKID) or srun --mpi=pmi2.
    info.launcher = "pmi";
    size = first_int({"PMI_SIZE"});
    local_rank = first_int({"MPI_LOCALRANKID", "SLURM_LOCALID"});
    local_size = first_int({"MPI_LOCALNRANKS"});
  } else if ((rank = first_int({"SLURM_PROCID"}))) {
    info.launcher = "slurm";
    size = first_int({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"});
    local_rank = first_int({"SLURM_LOCALID"});
    node = first_int({"SLURM_NODEID"});
    nodes = first_int({"SLURM_STEP_NUM_NODES", "SLURM_NNODES"});
  } else {
    info.launcher = "none";
    return info;
  }
  if (!local_size && node) local_size = slurm_tasks_on_node(*node);
  info.rank = *rank;
  info.world_size = size.value_or(std::max(1, *rank + 1));
  info.local_rank = local_rank.value_or(0);
  info.local_size = local_size.value_or(std::max(1, info.local_rank + 1));
  info.node_index = node.value_or(0);
  info.num_nodes = nodes.value_or(std::max(1, info.node_index + 1));
  OPINE_CHECK(info.rank < info.world_size, "launcher ", info.launcher, " says rank ", info.rank, " of ",
              info.world_size, " processes");
  OPINE_CHECK(info.local_rank < info.local_size, "launcher ", info.launcher, " says local rank ",
              info.local_rank, " of ", info.local_size, " processes on this node");
  return info;
}

struct Runtime::Impl {
  int nccl_device = -1;
};

std::unique_ptr<Runtime> Runtime::start(int* argc, char*** argv) {
  OPINE_CHECK(!g_runtime_alive.exchange(true), "the opine runtime is already started in this process");
  std::unique_ptr<Runtime> rt(new Runtime());  // from here the destructor releases g_runtime_alive
  rt->impl_ = std::make_shared<Impl>();
  const RuntimeInfo launched = info_from_environment();
  const std::string force = env("OPINE_FORCE_MPI").value_or("");
  OPINE_CHECK(force.empty() || force == "0" || force == "1", "OPINE_FORCE_MPI=", force, ": expected 0 or 1");
  const bool use_mpi = force == "1" || (force.empty() && launched.launcher != "none");

  RuntimeInfo& info = rt->info_;
  info.host = launched.host;
  info.launcher = launched.launcher;
  if (!use_mpi) {
    if (launched.world_size > 1)
      log::warn("launcher ", launched.launcher, " started ", launched.world_size,
                " processes but OPINE_FORCE_MPI=0: each runs alone");
    rt->world_ = make_self_communicator();
    rt->node_ = make_self_communicator();
    return rt;
  }
#if OPINE_HAVE_MPI
  int initialized = 0, finalized = 0;
  OPINE_MPI(MPI_Initialized(&initialized));
  OPINE_MPI(MPI_Finalized(&finalized));
  OPINE_CHECK(!finalized, "MPI was already finalized in this process: start the opine runtime only once");
  if (!initialized) {
    int provided = MPI_THREAD_SINGLE;
    OPINE_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    rt->mpi_started_ = true;
    OPINE_CHECK(provided >= MPI_THREAD_FUNNELED, "the MPI library offers no MPI_THREAD_FUNNELED");
  }  // else the caller (a test) started MPI and will finalize it
  MPI_Comm world = MPI_COMM_NULL, node = MPI_COMM_NULL;
  OPINE_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &world));
  OPINE_MPI(MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN));
  int rank = 0;
  OPINE_MPI(MPI_Comm_rank(world, &rank));
  OPINE_MPI(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  rt->world_ = make_mpi_communicator(world);
  rt->node_ = make_mpi_communicator(node);
  Communicator& w = *rt->world_;
  Communicator& n = *rt->node_;
  info.rank = w.rank();
  info.world_size = w.size();
  info.local_rank = n.rank();
  info.local_size = n.size();
  detail::set_process_rank(info.rank);
  // An MPI library that is not the launcher's starts every process as a lone rank 0.
  OPINE_CHECK(
      launched.launcher == "none" || (launched.rank == info.rank &&
                                      (launched.world_size == info.world_size || launched.world_size == 1)),
      "launcher ", launched.launcher, " says rank ", launched.rank, " of ", launched.world_size,
      " but MPI says rank ", info.rank, " of ", info.world_size,
      ": the MPI library opine was built with does not match the launcher (with Slurm, use srun --mpi=pmix)");

  // Nodes, numbered in the order of their lowest rank: each node's leader is its local rank 0.
  at::Tensor leader = at::full({1}, static_cast<int64_t>(info.rank), at::kLong);
  n.broadcast(leader, 0);
  at::Tensor is_leader = at::full({1}, info.local_rank == 0 ? 1 : 0, at::kInt);
  at::Tensor leaders = at::empty({info.world_size}, at::kInt);
  w.all_gather(is_leader, leaders);
  info.num_nodes = static_cast<int>(leaders.sum().item<int64_t>());
  info.node_index = static_cast<int>(leaders.narrow(0, 0, leader.item<int64_t>()).sum().item<int64_t>());
  log::set_rank(info.rank, info.world_size);
  log::debug(rt->describe());
  return rt;
#else
  (void)argc;
  (void)argv;
  OPINE_CHECK(launched.world_size == 1 && force != "1", "launcher ", launched.launcher, " started rank ",
              launched.rank, " of ", launched.world_size,
              " but this opine was built without MPI: rebuild with MPI (libopenmpi-dev) or run one process");
  rt->world_ = make_self_communicator();
  rt->node_ = make_self_communicator();
  return rt;
#endif
}

std::unique_ptr<Runtime> Runtime::split(int color) {
  std::unique_ptr<Runtime> g(new Runtime());
  g->group_ = true;
  g->impl_ = std::make_shared<Impl>();
  g->info_ = info_;
  if (info_.world_size == 1 && !mpi_started_) {
    g->world_ = make_self_communicator();
    g->node_ = make_self_communicator();
    return g;
  }
#if OPINE_HAVE_MPI
  MPI_Comm world = MPI_COMM_NULL, node = MPI_COMM_NULL;
  OPINE_MPI(MPI_Comm_split(MPI_COMM_WORLD, color, info_.rank, &world));
  OPINE_MPI(MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN));
  int rank = 0;
  OPINE_MPI(MPI_Comm_rank(world, &rank));
  OPINE_MPI(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  g->world_ = make_mpi_communicator(world);
  g->node_ = make_mpi_communicator(node);
  g->info_.rank = g->world_->rank();
  g->info_.world_size = g->world_->size();
#else
  (void)color;
  g->world_ = make_self_communicator();
  g->node_ = make_self_communicator();
#endif
  return g;
}

Runtime::~Runtime() {
  if (group_) {  // its communicators only
    nccl_.reset();
    node_.reset();
    world_.reset();
    return;
  }
#if OPINE_HAVE_MPI
  // An error leaving this rank while the others may wait in a collective: MPI_Finalize (and
  // freeing communicators) would wait for them forever. Leave MPI up; main() prints the error
  // and then abort_job_if_failing() ends every rank.
  if (mpi_started_ && info_.world_size > 1 && std::uncaught_exceptions() > 0) {
    g_abort_pending.store(true);
    g_runtime_alive.store(false);
    return;
  }
#endif
  // Communicators before MPI goes (they free MPI communicators; NCCL's id came over MPI).
  nccl_.reset();
  node_.reset();
  world_.reset();
#if OPINE_HAVE_MPI
  if (mpi_started_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
#endif
  g_runtime_alive.store(false);
}

void abort_job_if_failing(int code) {
#if OPINE_HAVE_MPI
  if (g_abort_pending.load()) {
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
#else
  (void)code;
#endif
}

at::Device Runtime::bind_device(const std::string& requested) {
  if (requested == "cpu") return at::Device(at::kCPU);
  const bool by_rank = requested == "cuda";
  std::optional<int> index;
  if (!by_rank) {
    OPINE_CHECK(requested.rfind("cuda:", 0) == 0, "device '", requested, "': expected cpu, cuda or cuda:N");
    index = parse_int(requested.substr(5));
    OPINE_CHECK(index, "device '", requested, "': expected cpu, cuda or cuda:N");
  }
#ifdef OPINE_HAVE_CUDA
  const int count = c10::cuda::device_count();
  OPINE_CHECK(count > 0, "device ", requested, " requested, but no CUDA device is visible on host ",
              info_.host, " (CUDA_VISIBLE_DEVICES=", env("CUDA_VISIBLE_DEVICES").value_or("unset"), ")");
  if (by_rank) {
    index = info_.local_rank % count;
    if (info_.local_size > count)
      log::warn(info_.local_size, " ranks on host ", info_.host, " share ", count,
                " CUDA devices: NCCL needs one device per rank");
  }
  OPINE_CHECK(*index < count, "device ", requested, " requested, but host ", info_.host, " shows ", count,
              " CUDA devices");
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(*index));
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(*index));
#else
  OPINE_CHECK(false, "device ", requested, " requested, but this opine was built without CUDA");
  return at::Device(at::kCPU);
#endif
}

Communicator& Runtime::world() { return *world_; }
Communicator& Runtime::node() { return *node_; }

Communicator& Runtime::for_device(at::Device device) {
  if (device.is_cpu()) return *world_;
  OPINE_CHECK(device.is_cuda(), "no communicator for tensors on ", device);
  // One process needs no NCCL: the self communicator takes tensors on any device.
  if (!nccl_compiled_in() && info_.world_size == 1) return *world_;
  int index = device.has_index() ? device.index() : 0;
#ifdef OPINE_HAVE_CUDA
  if (!device.has_index()) index = c10::cuda::current_device();
#endif
  if (!nccl_) {
    nccl_ = make_nccl_communicator(info_.rank, info_.world_size, index, [this](void* data, size_t bytes) {
      at::Tensor id = at::from_blob(data, {static_cast<int64_t>(bytes)}, at::kByte);
      world_->broadcast(id, 0);
    });
    impl_->nccl_device = index;
  }
  OPINE_CHECK(index == impl_->nccl_device,
              "the NCCL communicator of this rank is for cuda:", impl_->nccl_device, ", not cuda:", index,
              " (one device per rank)");
  return *nccl_;
}

std::string Runtime::describe() const {
  return ::opine::detail::concat("rank ", info_.rank, "/", info_.world_size, " (local ", info_.local_rank,
                                 "/", info_.local_size, ") on host ", info_.host, ", launcher ",
                                 info_.launcher, ", backend ", world_ ? world_->backend() : "none");
}

}  // namespace opine::dist
