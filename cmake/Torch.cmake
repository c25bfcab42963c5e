# libtorch from the pinned PyPI `torch` wheel in the project's virtual environment.
#
# We build imported targets by hand instead of calling find_package(Torch): the wheel's
# TorchConfig insists on a CUDA toolkit whenever the wheel was built with CUDA, which would
# break the CPU-only build. opine::torch links the CPU libraries; opine::torch_cuda adds the
# CUDA ones when the toolkit is found.
set(OPINE_TORCH_DIR "" CACHE PATH "Folder of the torch Python package (holds include/ and lib/)")
find_program(OPINE_PYTHON NAMES python3 python)
if(NOT OPINE_TORCH_DIR)
  execute_process(
    COMMAND ${OPINE_PYTHON} -c "import os, torch; print(os.path.dirname(torch.__file__))"
    OUTPUT_VARIABLE _torch_dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "torch not found: run scripts/setup.sh, or pass -DOPINE_TORCH_DIR=")
  endif()
  set(OPINE_TORCH_DIR "${_torch_dir}" CACHE PATH "" FORCE)
endif()

find_library(OPINE_TORCH_CPU_LIB torch_cpu PATHS "${OPINE_TORCH_DIR}/lib" NO_DEFAULT_PATH REQUIRED)
find_library(OPINE_C10_LIB c10 PATHS "${OPINE_TORCH_DIR}/lib" NO_DEFAULT_PATH REQUIRED)
message(STATUS "libtorch: ${OPINE_TORCH_DIR}")

add_library(opine_torch INTERFACE)
target_include_directories(opine_torch SYSTEM INTERFACE
  "${OPINE_TORCH_DIR}/include" "${OPINE_TORCH_DIR}/include/torch/csrc/api/include")
# The PyPI wheels (torch >= 2.7) are built with the C++11 ABI.
target_compile_definitions(opine_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
target_link_libraries(opine_torch INTERFACE "${OPINE_TORCH_CPU_LIB}" "${OPINE_C10_LIB}")
target_link_options(opine_torch INTERFACE "-Wl,-rpath,${OPINE_TORCH_DIR}/lib")
add_library(opine::torch ALIAS opine_torch)

if(OPINE_WITH_CUDA)
  find_library(OPINE_TORCH_CUDA_LIB torch_cuda PATHS "${OPINE_TORCH_DIR}/lib" NO_DEFAULT_PATH)
  find_library(OPINE_C10_CUDA_LIB c10_cuda PATHS "${OPINE_TORCH_DIR}/lib" NO_DEFAULT_PATH)
  if(OPINE_TORCH_CUDA_LIB AND OPINE_C10_CUDA_LIB)
    add_library(opine_torch_cuda INTERFACE)
    # --no-as-needed: nothing references torch_cuda by symbol, but loading it registers the
    # CUDA backend with the dispatcher.
    target_link_libraries(opine_torch_cuda INTERFACE opine_torch
      "-Wl,--no-as-needed" "${OPINE_TORCH_CUDA_LIB}" "${OPINE_C10_CUDA_LIB}" "-Wl,--as-needed")
    target_compile_definitions(opine_torch_cuda INTERFACE OPINE_HAVE_CUDA=1)
    add_library(opine::torch_cuda ALIAS opine_torch_cuda)
  else()
    message(STATUS "torch has no CUDA libraries: CPU-only build")
    set(OPINE_WITH_CUDA OFF)
  endif()
endif()
