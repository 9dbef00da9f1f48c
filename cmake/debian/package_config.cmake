# Writes the package's /etc/synapse-spoa/config.yaml: the output of the packaged binary's
# `print-default-config`, with the affinity snapshot saved in the unit's StateDirectory. Run at
# install time (cmake --install, cpack) by cmake/Packaging.cmake, so the file always matches the
# binary beside it.
#   cmake -DSPOA_AGENT=path/to/synapse-spoa -DSPOA_OUT=path/to/config.yaml -P package_config.cmake
foreach(var SPOA_AGENT SPOA_OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "package_config.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${SPOA_AGENT}" print-default-config
  OUTPUT_VARIABLE text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SPOA_AGENT} print-default-config failed (${rc})")
endif()

# Replaces the one line of `text` matching `line_re` (a whole line, "\n" on both sides) with
# `line`; fails when the default config does not have exactly one (it changed shape).
function(replace_line line_re line what)
  string(REGEX REPLACE "${line_re}" "\n@SPOA_LINE@\n" marked "${text}")
  string(FIND "${marked}" "@SPOA_LINE@" first)
  string(FIND "${marked}" "@SPOA_LINE@" last REVERSE)
  if(first EQUAL -1 OR NOT first EQUAL last)
    message(FATAL_ERROR "package_config.cmake: expected exactly one `${what}` line in the "
                        "default config; update this script with default_config.yaml")
  endif()
  string(REPLACE "@SPOA_LINE@" "${line}" marked "${marked}")
  set(text "${marked}" PARENT_SCOPE)
endfunction()

# An empty snapshot path means "not saved"; a relative one would be resolved against the
# service's working directory (/), which ProtectSystem=strict makes read-only.
replace_line("\n  snapshot: \"\"( +#[^\n]*)?\n"
  "  snapshot: /var/lib/synapse-spoa/affinity.msgpack   # the unit's StateDirectory"
  "  snapshot: \"\"")
# The runtime control socket (synapse-spoa ctl) in the unit's RuntimeDirectory: group
# synapse-spoa may use it (directory 0750, socket 0660).
replace_line("\n  socket: \"\"( +#[^\n]*)?\n"
  "  socket: /run/synapse-spoa/ctl.sock   # the unit's RuntimeDirectory; synapse-spoa ctl"
  "  socket: \"\"")

set(header "# /etc/synapse-spoa/config.yaml — the Debian package's config: `synapse-spoa print-default-config`
# with the affinity snapshot in /var/lib/synapse-spoa (the unit's StateDirectory). Describe your
# own pools and workers, then `synapse-spoa check-config --config /etc/synapse-spoa/config.yaml`
# and `systemctl reload synapse-spoa` (SIGHUP) or `systemctl enable --now synapse-spoa`.
#
")
get_filename_component(dir "${SPOA_OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
file(WRITE "${SPOA_OUT}" "${header}${text}")
