# Issue 13: every HAProxy-driving integration test also runs against HAProxy 3.2 from the sid
# chroot (scripts/sid-chroot), as the same test code with SPOA_HAPROXY = scripts/haproxy3 (the
# chroot's binary on the host's loopback, no chroot(2), no mounts). Each twin is the 2.6 test's
# name + `_h32`, with its labels + `haproxy3` (ctest -L haproxy3); `integration` stays, so
# scripts/sanitize-tests (-LE 'integration|compose') leaves them out like their 2.6 originals.
# tests/integration/with-haproxy3 builds the chroot when missing and exits 77 (skip) with the
# reason when it cannot; in CI (SPOA_REQUIRE_SYNAPSE=1, CI=true) that is a failure.
# it_hostile and it_spop_peer have no 3.2 twin: they drive the agent with a scripted peer, no
# HAProxy at all. Included from this directory's CMakeLists.txt.
set(spoa_h32_runner ${CMAKE_CURRENT_LIST_DIR}/with-haproxy3)
set(spoa_h32_env ${spoa_it_env})
list(FILTER spoa_h32_env EXCLUDE REGEX "^SPOA_HAPROXY=")
list(APPEND spoa_h32_env "SPOA_HAPROXY=${PROJECT_SOURCE_DIR}/scripts/haproxy3"
  "SPOA_HAPROXY_EXPECT=3.2")

# spoa_h32_test(<2.6 test name> <module> <timeout> [labels...])
function(spoa_h32_test name module timeout)
  add_test(NAME ${name}_h32
    COMMAND ${spoa_h32_runner} ${Python3_EXECUTABLE} -m unittest -v ${module}
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(${name}_h32 PROPERTIES ENVIRONMENT "${spoa_h32_env}"
    LABELS "integration;haproxy3;${ARGN}" SKIP_RETURN_CODE 77 TIMEOUT ${timeout})
endfunction()

# haproxy -c -dW (warnings fatal) on haproxy/haproxy.cfg with the harness's environment.
add_test(NAME haproxy_check_26
  COMMAND ${Python3_EXECUTABLE} -m unittest -v test_haproxy_config
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(haproxy_check_26 PROPERTIES
  ENVIRONMENT "${spoa_it_env};SPOA_HAPROXY_EXPECT=2.6" LABELS integration TIMEOUT 60)
add_test(NAME haproxy_check_32
  COMMAND ${spoa_h32_runner} ${Python3_EXECUTABLE} -m unittest -v test_haproxy_config
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(haproxy_check_32 PROPERTIES ENVIRONMENT "${spoa_h32_env}"
  LABELS "integration;haproxy3" SKIP_RETURN_CODE 77 TIMEOUT 600)

spoa_h32_test(it_haproxy_e2e test_haproxy_e2e 300)
spoa_h32_test(it_closed_loop test_closed_loop 300)
spoa_h32_test(it_faults test_faults 400 reliability)
spoa_h32_test(it_stall test_stall 180)
spoa_h32_test(it_haproxy_view test_haproxy_view 120)
spoa_h32_test(it_feedback test_feedback 120)
spoa_h32_test(it_fallback_drift test_fallback_drift 120)
