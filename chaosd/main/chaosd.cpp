#include <cstdio>

int main() {
  std::puts("chaosd " CHAOSD_VERSION);
  return 0;
}
