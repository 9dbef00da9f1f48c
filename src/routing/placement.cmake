# Placement: keyed weighted rendezvous, bounded load, the affinity table and its snapshot.
# Included by CMakeLists.txt in this directory (which links msgpackc-cxx privately).
target_sources(spoa_routing PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/siphash.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rendezvous.cpp
  ${CMAKE_CURRENT_LIST_DIR}/affinity_table.cpp
  ${CMAKE_CURRENT_LIST_DIR}/placement.cpp
  ${CMAKE_CURRENT_LIST_DIR}/snapshot.cpp)
