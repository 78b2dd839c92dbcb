#include <cstdio>

int main() {
  std::puts("chaosctl " CHAOSD_VERSION);
  return 0;
}
