# Every dependency is a Debian 12 package; scripts/bootstrap installs them.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(spdlog REQUIRED)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
pkg_check_modules(LIBYAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(LIBNL REQUIRED IMPORTED_TARGET libnl-3.0 libnl-route-3.0)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(NFTABLES REQUIRED IMPORTED_TARGET libnftables)
# network.delay without netem: NFQUEUE rules built with libnftnl over libmnl, and the
# queue's consumer (libnetfilter_queue's libmnl API).
pkg_check_modules(NFQUEUE REQUIRED IMPORTED_TARGET libnetfilter_queue libnftnl libmnl)
# dns.error: ldns parses the queries it intercepts and writes its error answers.
pkg_check_modules(LDNS REQUIRED IMPORTED_TARGET ldns)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
# The daemon's HTTP/1.1 server on its UNIX socket and the metrics listener.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
# http.fault: the proxy's HTTP/1.1 parser (libhttp-parser-dev ships no .pc file).
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
add_library(chaosd_http_parser INTERFACE)
target_include_directories(chaosd_http_parser SYSTEM INTERFACE ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(chaosd_http_parser INTERFACE ${HTTP_PARSER_LIBRARY})

add_library(chaosd_deps INTERFACE)
target_link_libraries(chaosd_deps INTERFACE
  Threads::Threads Boost::program_options nlohmann_json::nlohmann_json spdlog::spdlog
  PkgConfig::YAMLCPP PkgConfig::LIBYAML PkgConfig::LIBNL PkgConfig::SECCOMP PkgConfig::NFTABLES PkgConfig::NFQUEUE PkgConfig::LDNS
  PkgConfig::CURL PkgConfig::SQLITE PkgConfig::MHD chaosd_http_parser)
