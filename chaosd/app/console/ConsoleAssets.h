#pragma once

#include <cstddef>
#include <string_view>

// The console's pages, styles and scripts (chaosd/app/console/assets/), embedded in the
// binary at build time (cmake/EmbedAssets.cmake writes ConsoleAssetsData.cpp), so the console
// works on an air-gapped host and nothing is fetched at run time.
namespace chaosd::console {

struct ConsoleAsset {
  std::string_view name;  // the file's name: "app.js"
  std::string_view contentType;
  std::string_view body;
};

// The asset named so, or null.
const ConsoleAsset* consoleAsset(std::string_view name);

// Written by the build: every file of assets/.
extern const ConsoleAsset kConsoleAssets[];
extern const size_t kConsoleAssetCount;

}  // namespace chaosd::console
