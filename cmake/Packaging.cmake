# Install rules and the Debian package (README, "Debian package"):
#   cmake --build build --target synapse-spoa && (cd build && cpack -G DEB)
# builds synapse-spoa_<version>_<arch>.deb: the agent, a hardened systemd unit, the config from
# the binary's own print-default-config (a conffile), the HAProxy files and the Grafana dashboard.
# tests/package/test_deb.py builds it, installs it into a throwaway root and checks it.
include(GNUInstallDirs)

set(spoa_debian_dir ${CMAKE_CURRENT_LIST_DIR}/debian)

# Packaging needs only the agent: cpack and `cmake --install` install what is built instead of
# first building every test and benchmark (install would otherwise depend on `all`).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS synapse-spoa RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The config is written from the installed-to-be binary at install time, then installed like any
# file (so it lands in the staging root and in install_manifest.txt). 0640: it may hold
# placement.hash_key; postinst gives it to group synapse-spoa with dpkg-statoverride.
set(spoa_package_config ${CMAKE_BINARY_DIR}/package/config.yaml)
install(CODE "execute_process(COMMAND \"${CMAKE_COMMAND}\"
    -DSPOA_AGENT=$<TARGET_FILE:synapse-spoa> -DSPOA_OUT=${spoa_package_config}
    -P ${spoa_debian_dir}/package_config.cmake
  COMMAND_ERROR_IS_FATAL ANY)")
install(FILES ${spoa_package_config} DESTINATION /etc/synapse-spoa
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

# bookworm's systemd (252) and debhelper install system units under /lib, not /usr/lib.
install(FILES ${spoa_debian_dir}/synapse-spoa.service DESTINATION /lib/systemd/system)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/haproxy/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/synapse-spoa/haproxy)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/grafana/dashboards/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/synapse-spoa/grafana
  FILES_MATCHING PATTERN "*.json")
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${spoa_debian_dir}/copyright
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/synapse-spoa)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME synapse-spoa)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})  # the one version, as `synapse-spoa version`
set(CPACK_PACKAGE_CONTACT "synapse-spoa maintainers <maintainers@users.noreply.r-seed-45b3172a.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "HAProxy SPOE agent that routes Matrix Synapse traffic to its workers")
set(CPACK_PACKAGE_DESCRIPTION
  "synapse-spoa answers HAProxy's SPOE requests with the Synapse worker that should serve each\n\
request: Synapse's worker routing rules, room / user / origin affinity (rendezvous hashing with\n\
bounded load) and the live load every worker reports on its Prometheus endpoint.\n\
The package ships the agent, a hardened systemd unit (not enabled on install), an example config\n\
in /etc/synapse-spoa and the matching HAProxy and Grafana files in /usr/share/synapse-spoa.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # synapse-spoa_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from dpkg-shlibdeps (dpkg-dev); adduser for postinst, procps for the
# unit's `kill -HUP` reload.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS haproxy)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${spoa_debian_dir}/conffiles ${spoa_debian_dir}/postinst ${spoa_debian_dir}/prerm
  ${spoa_debian_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
