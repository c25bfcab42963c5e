// Error reporting and argument checks shared by the communicators (see comm_detail.h).
#include "core/comm_detail.h"

#include "core/host.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace opine::dist::detail {
namespace {

std::atomic<int> g_rank{-1};

// Messages name files from the project root ("core/comm_mpi.cpp"), not the build machine's path.
std::string short_file(const char* file) {
  const std::string f = file;
  const auto at = f.rfind("/core/");
  return at == std::string::npos ? f : f.substr(at + 1);
}

}  // namespace

int process_rank() {
  if (const int r = g_rank.load(); r >= 0) return r;
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"})
    if (const char* v = std::getenv(var); v && *v) return std::atoi(v);
  return 0;
}

void set_process_rank(int rank) { g_rank.store(rank); }

std::string where() { return ::opine::detail::concat("rank ", process_rank(), " on host ", host_name()); }

std::string failure_message(const char* library, const char* file, int line, const char* call,
                            const std::string& what) {
  return ::opine::detail::concat(library, " call ", call, " failed at ", short_file(file), ":", line,
                                 " on rank ", process_rank(), " (host ", host_name(), "): ", what);
}

void throw_failure(const char* library, const char* file, int line, const char* call,
                   const std::string& what) {
  throw Error(ErrorKind::kIo, failure_message(library, file, line, call, what));
}

void check_contiguous(const at::Tensor& t, const char* collective) {
  OPINE_ASSERT(t.defined() && t.is_contiguous(), collective, " needs a defined contiguous tensor (", where(),
               ")");
}

void check_pair(const at::Tensor& input, const at::Tensor& output, const char* collective) {
  check_contiguous(input, collective);
  check_contiguous(output, collective);
  OPINE_ASSERT(input.scalar_type() == output.scalar_type(), collective, ": input ", input.scalar_type(),
               " but output ", output.scalar_type(), " (", where(), ")");
  OPINE_ASSERT(input.device() == output.device(), collective, ": input on ", input.device(),
               " but output on ", output.device(), " (", where(), ")");
}

void check_root(int root, int size) {
  OPINE_ASSERT(root >= 0 && root < size, "broadcast root ", root, " is not a rank of a communicator of ",
               size, " (", where(), ")");
}

bool overlaps(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  const auto* a0 = static_cast<const char*>(a.data_ptr());
  const auto* b0 = static_cast<const char*>(b.data_ptr());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

}  // namespace opine::dist::detail
