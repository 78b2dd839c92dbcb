# The layers of chaosd, lowest first: "name:folder[,folder...]", folders relative to the
# source root. Each layer is a static library chaosd_<name> that links only the layer below
# it, and a file of a layer includes only its own layer and lower ones (cmake/CheckLayers.cmake
# fails the build otherwise). chaosd/main holds the thin mains of the app layer, not library
# code. docs/architecture.md draws them and says where new code goes.
set(CHAOSD_LAYERS
  "base:chaosd/base"
  "experiments:experiments"
  "injectors:injectors"
  "engine:chaosd/engine"
  "reports:reports"
  "app:chaosd/app,chaosd/main")
