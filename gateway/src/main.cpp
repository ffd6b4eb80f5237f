// The executable holds only this file; everything else is a library.
#include <iostream>

#include "tidegate/gateway/cli.h"

int main(int argc, char** argv) { return tidegate::gateway::run_cli(argc, argv, std::cout, std::cerr); }
