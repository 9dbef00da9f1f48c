# Reliability tests (issue 9), included by this directory's CMakeLists.txt:
#   it_hostile — hostile and broken SPOP peers against the real agent (no HAProxy needed);
#   it_faults  — faults with HAProxy in the loop: agent SIGKILL + snapshot restore, broken worker
#                metrics, SIGHUP reloads.
# Both carry the labels `integration` and `reliability` (ctest -L reliability).
# The 10-minute soak (tests/soak/soak.sh) is not a ctest test: it runs with the benchmarks.
spoa_python_test(it_hostile test_hostile)
spoa_python_test(it_faults test_faults)
set_tests_properties(it_hostile PROPERTIES TIMEOUT 300 LABELS "integration;reliability")
set_tests_properties(it_faults PROPERTIES TIMEOUT 400 LABELS "integration;reliability")
