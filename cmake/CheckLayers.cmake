# The layering rule, enforced: a file of a layer may include files of its own layer and of the
# layers below it (cmake/Layers.cmake), never of a layer above, and every quoted include names
# a file of a layer. Run as a script by the build before any library compiles, and by
# LayerCheck tests against fixture trees that break the rule:
#
#   cmake -DCHAOSD_LAYERS_ROOT=<source dir> -P cmake/CheckLayers.cmake

include(${CMAKE_CURRENT_LIST_DIR}/Layers.cmake)

if(NOT CHAOSD_LAYERS_ROOT)
  message(FATAL_ERROR "CheckLayers: set CHAOSD_LAYERS_ROOT to the source tree")
endif()

# The layer (index into CHAOSD_LAYERS) of a path relative to the root, or -1.
function(chaosd_layer_of path out)
  set(index 0)
  set(found -1)
  foreach(entry IN LISTS CHAOSD_LAYERS)
    string(REGEX REPLACE "^[^:]+:" "" folders "${entry}")
    string(REPLACE "," ";" folders "${folders}")
    foreach(folder IN LISTS folders)
      string(LENGTH "${folder}/" n)
      string(SUBSTRING "${path}" 0 ${n} head)
      if(head STREQUAL "${folder}/")
        set(found ${index})
      endif()
    endforeach()
    math(EXPR index "${index} + 1")
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

function(chaosd_layer_name index out)
  list(GET CHAOSD_LAYERS ${index} entry)
  string(REGEX REPLACE ":.*$" "" name "${entry}")
  set(${out} ${name} PARENT_SCOPE)
endfunction()

set(violations "")
set(checked 0)
foreach(entry IN LISTS CHAOSD_LAYERS)
  string(REGEX REPLACE "^[^:]+:" "" folders "${entry}")
  string(REPLACE "," ";" folders "${folders}")
  foreach(folder IN LISTS folders)
    file(GLOB_RECURSE files RELATIVE "${CHAOSD_LAYERS_ROOT}"
         "${CHAOSD_LAYERS_ROOT}/${folder}/*.h" "${CHAOSD_LAYERS_ROOT}/${folder}/*.cpp")
    foreach(file IN LISTS files)
      math(EXPR checked "${checked} + 1")
      chaosd_layer_of("${file}" from)
      file(STRINGS "${CHAOSD_LAYERS_ROOT}/${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
      foreach(line IN LISTS includes)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*$" "\\1" target "${line}")
        chaosd_layer_of("${target}" to)
        chaosd_layer_name(${from} fromName)
        if(to EQUAL -1)
          # Quoted includes name project files from the root; anything else (tests/, a
          # relative path) is outside the layers and not for production code.
          string(APPEND violations
                 "\n  ${file} (${fromName}) includes \"${target}\", which is in no layer")
        elseif(to GREATER from)
          chaosd_layer_name(${to} toName)
          string(APPEND violations
                 "\n  ${file} (${fromName}) includes \"${target}\" (${toName}, a higher layer)")
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()

if(checked EQUAL 0)
  message(FATAL_ERROR "CheckLayers: no source files under ${CHAOSD_LAYERS_ROOT}")
endif()
if(violations)
  message(FATAL_ERROR "CheckLayers: a lower layer includes a higher one (layers, lowest first: "
                      "base, experiments, injectors, engine, reports, app; docs/architecture.md):"
                      "${violations}")
endif()
