// Boost.Asio, its SSL layer and Boost.Beast, compiled once for the whole
// program. The tree builds with BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION (top-level CMakeLists.txt), so their
// headers declare the non-template functions and this file defines them,
// instead of every file that includes Asio compiling them again.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
