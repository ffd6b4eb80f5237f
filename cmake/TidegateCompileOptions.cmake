# Warning and sanitizer flags, applied per target (never through global
# CMAKE_CXX_FLAGS edits) so that third-party code keeps its own settings.
# A library that holds a kind of source or sink (its plugin.cpp): the
# gateway links every one of them; gateway/src/plugin_list.inc names them.
function(tidegate_plugin target)
  set_property(GLOBAL APPEND PROPERTY TIDEGATE_PLUGIN_TARGETS ${target})
endfunction()

function(tidegate_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wconversion -Wno-sign-conversion -Wformat=2 -Wimplicit-fallthrough
    # ARM only: GCC notes that std::map iterators are passed differently
    # than by GCC 6 (an ABI note about code we never mix with): hundreds of
    # lines that would hide real warnings in a cross build's log.
    $<$<CXX_COMPILER_ID:GNU>:-Wno-psabi>)
  if(CMAKE_UNITY_BUILD)
    # A unity build #includes each .cpp into one file, and GCC then takes a
    # class that holds an anonymous-namespace type (Buffer::Impl) for one
    # defined in a header.
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
  endif()
  if(TIDEGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(TIDEGATE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined
      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(TIDEGATE_TSAN)
    # -Wno-tsan: GCC warns that std::atomic_thread_fence (in Boost.Asio's
    # headers) is not instrumented; our own code uses none.
    target_compile_options(${target} PRIVATE -fsanitize=thread -Wno-tsan)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
  if(TIDEGATE_FUZZ)  # coverage for libFuzzer in every library it reaches
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()
