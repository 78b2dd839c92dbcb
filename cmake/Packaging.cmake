# Installation layout and the .deb (cpack -G DEB in the build directory).
include(GNUInstallDirs)
# `cpack` (and `ninja install`) need only what is installed built, not every test and bench:
# DaemonPackageTest builds the .deb from a tree where chaosd and chaosctl are built.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CHAOSD_DEPLOY ${PROJECT_SOURCE_DIR}/deploy)
install(FILES ${CHAOSD_DEPLOY}/systemd/chaosd.service DESTINATION lib/systemd/system)
install(FILES ${CHAOSD_DEPLOY}/man/chaosd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CHAOSD_DEPLOY}/man/chaosctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CHAOSD_DEPLOY}/bash-completion/chaosctl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
# The examples with the demo services they start (${experiment_dir}/demo/*.py), so a packaged
# demo runs as it does from the source tree.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/experiments/examples/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples FILES_MATCHING PATTERN "*.yaml"
        PATTERN "*.py")
# The Ansible collection (docs/fleet.md): copy or symlink it into a collections path.
install(DIRECTORY ${CHAOSD_DEPLOY}/ansible/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/ansible)
install(DIRECTORY ${CHAOSD_DEPLOY}/kubernetes/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/kubernetes FILES_MATCHING PATTERN "*.yaml")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME chaosd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "chaosd maintainers <chaosd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "chaos-engineering fault injection: chaosd daemon and chaosctl")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Library dependencies from the binaries (dpkg-shlibdeps); curl for the kubernetes probe,
# libfaketime for time.skew (preloaded into exec targets, never linked).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)  # the build is RelWithDebInfo: 70 MB of debug info otherwise
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "curl, libfaketime")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CHAOSD_DEPLOY}/debian/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
