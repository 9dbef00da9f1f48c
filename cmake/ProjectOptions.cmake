# project_options: one interface target carrying warnings and (optionally) sanitizers, linked by
# every target of the project so a flag is changed in one place. No -Wnull-dereference: g++ 12
# reports false positives inside Asio 1.74's scheduler for every coroutine user.
add_library(project_options INTERFACE)
target_compile_features(project_options INTERFACE cxx_std_20)
target_compile_options(project_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wdouble-promotion -Wformat=2
  -Wimplicit-fallthrough)
if(SPOA_WERROR)
  target_compile_options(project_options INTERFACE -Werror)
endif()
if(SPOA_SANITIZE)
  target_compile_options(project_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(project_options INTERFACE -fsanitize=address,undefined)
endif()
