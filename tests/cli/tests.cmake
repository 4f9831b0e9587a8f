# nllk-score's tests, included from tests/CMakeLists.txt when the program is built (NLLK_BUILD_APPS).
#
#  - npy_corpus: every file of tests/fuzz/corpus through the fuzz harness's checks (built with the ordinary
#    compiler, so CI needs no clang; under ASan/UBSan with NLLK_SANITIZE).
#  - cli_tests: tests/cli (pytest, /usr/bin/python3 with numpy and torch): end-to-end runs on generated .npy files.
#  - NLLK_FUZZ=ON with clang builds the libFuzzer binary fuzz_npy (not a test: run it by hand, see tests/fuzz).

add_executable(npy_corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/run_corpus.c ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_npy.c)
target_link_libraries(npy_corpus PRIVATE nllk_score_npy)
add_test(NAME npy_corpus COMMAND npy_corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus)

option(NLLK_FUZZ "Build the libFuzzer harness of the .npy parser (clang only)" OFF)
if(NLLK_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "NLLK_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  add_executable(fuzz_npy ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_npy.c ${PROJECT_SOURCE_DIR}/apps/nllk-score/npy.c)
  target_include_directories(fuzz_npy PRIVATE ${PROJECT_SOURCE_DIR}/apps/nllk-score)
  target_compile_options(fuzz_npy PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g)
  target_link_options(fuzz_npy PRIVATE -fsanitize=fuzzer,address,undefined)
endif()

set(NLLK_CLI_PYTHON3 /usr/bin/python3 CACHE FILEPATH "Python with numpy, torch and pytest, for nllk-score's tests")
set(_cli_py_ok OFF)
if(CMAKE_CROSSCOMPILING)
  # the tests run the program and load the library into the host's Python: not for a foreign architecture
  message(STATUS "nllk: nllk-score end-to-end tests not registered (cross build)")
elseif(EXISTS "${NLLK_CLI_PYTHON3}")
  execute_process(COMMAND "${NLLK_CLI_PYTHON3}" -c "import numpy, torch, pytest"
                  RESULT_VARIABLE _cli_py_rc OUTPUT_QUIET ERROR_QUIET)
  if(_cli_py_rc EQUAL 0)
    set(_cli_py_ok ON)
  endif()
endif()
if(_cli_py_ok)
  set(_cli_env "NLLK_SCORE=$<TARGET_FILE:nllk-score>" "NLLK_LIBRARY=$<TARGET_FILE:nllk>" "PYTHONDONTWRITEBYTECODE=1")
  if(NLLK_SANITIZE)
    # the tests load the sanitized libnllk.so into Python (ctypes): the runtime must come first
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so OUTPUT_VARIABLE _asan
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libubsan.so OUTPUT_VARIABLE _ubsan
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    list(APPEND _cli_env "LD_PRELOAD=${_asan}:${_ubsan}" "ASAN_OPTIONS=detect_leaks=0")
  endif()
  add_test(NAME cli_tests
           COMMAND "${NLLK_CLI_PYTHON3}" -m pytest -q -p no:cacheprovider ${PROJECT_SOURCE_DIR}/tests/cli)
  set_tests_properties(cli_tests PROPERTIES ENVIRONMENT "${_cli_env}" TIMEOUT 1200)
elseif(NOT CMAKE_CROSSCOMPILING)
  message(STATUS "nllk: nllk-score end-to-end tests not registered (${NLLK_CLI_PYTHON3} lacks numpy/torch/pytest)")
endif()
