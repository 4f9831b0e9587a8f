# The accumulator-state fuzz harness (tests/fuzz/fuzz_acc.c), included from tests/CMakeLists.txt.
#  - acc_corpus: every file of tests/fuzz/corpus_acc through the harness, built with the ordinary compiler (so CI
#    needs no clang; under ASan/UBSan with NLLK_SANITIZE). make_corpus_acc.py writes the seeds.
#  - NLLK_FUZZ=ON with clang (and NLLK_SANITIZE=ON) builds the libFuzzer binary fuzz_acc, with coverage of the
#    library's dispatch code; scripts/test.sh runs it for a bounded time.
add_executable(acc_corpus ${CMAKE_CURRENT_LIST_DIR}/run_corpus.c ${CMAKE_CURRENT_LIST_DIR}/fuzz_acc.c)
target_link_libraries(acc_corpus PRIVATE nllk_static)
add_test(NAME acc_corpus COMMAND acc_corpus ${CMAKE_CURRENT_LIST_DIR}/corpus_acc)

if(NLLK_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "NLLK_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  add_executable(fuzz_acc ${CMAKE_CURRENT_LIST_DIR}/fuzz_acc.c)
  target_link_libraries(fuzz_acc PRIVATE nllk_static)
  target_compile_options(fuzz_acc PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g)
  target_link_options(fuzz_acc PRIVATE -fsanitize=fuzzer,address,undefined)
  target_compile_options(nllk_dispatch PRIVATE -fsanitize=fuzzer-no-link)
endif()
