# LayerCheck: cmake/CheckLayers.cmake accepts a tree that keeps the layering and refuses one
# that breaks it, naming the file and the include. Fixture trees are written to SCRATCH.
#
#   cmake -DCHAOSD_SOURCE_DIR=<root> -DSCRATCH=<dir> -P tests/layers/LayerCheckTest.cmake

function(write_tree root)
  file(REMOVE_RECURSE "${root}")
  file(WRITE "${root}/chaosd/base/Result.h" "#pragma once\n#include <string>\n")
  file(WRITE "${root}/experiments/model/Experiment.h" "#include \"chaosd/base/Result.h\"\n")
  file(WRITE "${root}/injectors/Injector.h" "#include \"experiments/model/Experiment.h\"\n")
  file(WRITE "${root}/chaosd/engine/Engine.cpp" "#include \"injectors/Injector.h\"\n")
  file(WRITE "${root}/reports/ReportJson.cpp" "#include \"chaosd/engine/Engine.h\"\n")
  file(WRITE "${root}/chaosd/app/cli/Run.cpp" "#include \"reports/ReportJson.h\"\n")
  file(WRITE "${root}/chaosd/main/chaosctl.cpp" "#include \"chaosd/app/cli/Cli.h\"\n")
endfunction()

# check(NAME EXPECT_OK [MUST_SAY text...]): runs the checker on SCRATCH/NAME.
function(check name expect_ok)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -DCHAOSD_LAYERS_ROOT=${SCRATCH}/${name}
            -P ${CHAOSD_SOURCE_DIR}/cmake/CheckLayers.cmake
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(expect_ok AND NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: a tree that keeps the layering was refused:\n${err}")
  endif()
  if(NOT expect_ok AND rc EQUAL 0)
    message(FATAL_ERROR "${name}: a tree that breaks the layering was accepted")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${err}")  # CMake wraps long messages
  foreach(text IN LISTS ARGN)
    string(FIND "${flat}" "${text}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${name}: the refusal does not say '${text}':\n${err}")
    endif()
  endforeach()
  message(STATUS "${name}: as expected")
endfunction()

write_tree("${SCRATCH}/good")
check(good TRUE)

# The loop the architecture issue found: an injector including the engine.
write_tree("${SCRATCH}/injector-includes-engine")
file(APPEND "${SCRATCH}/injector-includes-engine/injectors/Injector.h"
     "#include \"chaosd/engine/Guardian.h\"\n")
check(injector-includes-engine FALSE
      "injectors/Injector.h (injectors) includes \"chaosd/engine/Guardian.h\" (engine, a higher layer)")

# The model including the injectors (for TargetKind, once).
write_tree("${SCRATCH}/model-includes-injectors")
file(APPEND "${SCRATCH}/model-includes-injectors/experiments/model/Experiment.h"
     "  #  include \"injectors/FaultRegistry.h\" // spaced\n")
check(model-includes-injectors FALSE
      "experiments/model/Experiment.h (experiments) includes \"injectors/FaultRegistry.h\"")

# The base reaching the top, and a production file including test scaffolding.
write_tree("${SCRATCH}/base-includes-app")
file(WRITE "${SCRATCH}/base-includes-app/chaosd/base/Log.cpp"
     "#include \"chaosd/app/daemon/Api.h\"\n#include \"tests/support/Shell.h\"\n")
check(base-includes-app FALSE "chaosd/base/Log.cpp (base) includes \"chaosd/app/daemon/Api.h\""
      "\"tests/support/Shell.h\", which is in no layer")

# And the real tree keeps it.
execute_process(
  COMMAND ${CMAKE_COMMAND} -DCHAOSD_LAYERS_ROOT=${CHAOSD_SOURCE_DIR}
          -P ${CHAOSD_SOURCE_DIR}/cmake/CheckLayers.cmake
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the source tree breaks the layering:\n${err}")
endif()
file(REMOVE_RECURSE "${SCRATCH}")
