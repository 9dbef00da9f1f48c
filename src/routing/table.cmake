# The route table (owner: routing table). Included by CMakeLists.txt in this directory.
target_sources(spoa_routing PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/default_rules.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pattern.cpp
  ${CMAKE_CURRENT_LIST_DIR}/percent.cpp
  ${CMAKE_CURRENT_LIST_DIR}/route_table.cpp)
