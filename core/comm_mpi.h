// The MPI communicator (internal: only core/runtime.cpp and the tests build one) and OPINE_MPI,
// the check around every MPI call. Compiled only when CMake found MPI (OPINE_HAVE_MPI).
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "core/comm.h"
#include "core/comm_detail.h"

namespace opine::dist {

// Takes ownership of `comm` (freed with the communicator, unless MPI is finalized by then) and
// sets MPI_ERRORS_RETURN on it so that OPINE_MPI sees its errors. Pass a duplicate of
// MPI_COMM_WORLD, never MPI_COMM_WORLD itself.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);

namespace detail {
std::string mpi_error_string(int code);
}  // namespace detail

}  // namespace opine::dist

// Throws opine::Error (file:line, rank, host, MPI's message) when an MPI call does not succeed.
#define OPINE_MPI(call)                                                                             \
  do {                                                                                              \
    const int opine_mpi_rc_ = (call);                                                               \
    if (opine_mpi_rc_ != MPI_SUCCESS)                                                               \
      ::opine::dist::detail::throw_failure("MPI", __FILE__, __LINE__, #call,                        \
                                           ::opine::dist::detail::mpi_error_string(opine_mpi_rc_)); \
  } while (0)
