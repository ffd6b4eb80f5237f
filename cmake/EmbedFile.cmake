# cmake -DINPUT=<file> -DOUTPUT=<file.cpp> -DNAMESPACE=<ns> -DFUNCTION=<name> -P EmbedFile.cmake
# Writes a C++ source whose function returns the input file's bytes, so a
# page ships inside the binary and still lives in the tree as a real file.
file(READ "${INPUT}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," content "${content}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/EmbedFile.cmake; do not edit.\n"
  "#include <string>\n\nnamespace ${NAMESPACE} {\n\n"
  "const std::string& ${FUNCTION}() {\n"
  "  static const char kBytes[] = {${content} '\\0'};\n"
  "  static const std::string kText(kBytes, sizeof kBytes - 1);\n"
  "  return kText;\n}\n\n}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
