# nllk-score-mpi (NLLK_MPI): tests/mpi runs `mpirun --oversubscribe -n K nllk-score-mpi` (K = 1..5) on loopback and compares
# the bits with one process. Open MPI refuses root unless told (containers, CI): the test allows it.
# Included after tests/cli/tests.cmake, whose _cli_py_ok says the Python (numpy, pytest) is there.
if(NLLK_MPI AND NOT CMAKE_CROSSCOMPILING)
  find_package(MPI COMPONENTS C QUIET)
  if(MPIEXEC_EXECUTABLE AND _cli_py_ok)
    set(_mpi_env "NLLK_SCORE=$<TARGET_FILE:nllk-score-mpi>" "NLLK_MPIEXEC=${MPIEXEC_EXECUTABLE}" "PYTHONDONTWRITEBYTECODE=1")
    if(NLLK_SANITIZE)
      # Open MPI's own allocations at exit trip LeakSanitizer: leaks are checked by the other tests
      list(APPEND _mpi_env "ASAN_OPTIONS=detect_leaks=0")
    endif()
    add_test(NAME mpi_tests
             COMMAND "${NLLK_CLI_PYTHON3}" -m pytest -q -p no:cacheprovider ${PROJECT_SOURCE_DIR}/tests/mpi)
    set_tests_properties(mpi_tests PROPERTIES ENVIRONMENT "${_mpi_env}" TIMEOUT 600 RUN_SERIAL ON)
  else()
    message(STATUS "nllk: MPI tests not registered (no mpiexec, or ${NLLK_CLI_PYTHON3} lacks numpy/pytest)")
  endif()
endif()
