// A WAGI function in C: build with clang --target=wasm32-wasi --sysroot=/usr -O2 -o hello.wasm hello.c
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char *method = getenv("REQUEST_METHOD");
  const char *path = getenv("PATH_INFO");
  printf("Content-Type: text/plain\n\n");
  printf("Hello from C on Skiff!\nmethod: %s\npath: %s\n", method ? method : "?", path ? path : "?");
  fprintf(stderr, "served %s %s\n", method ? method : "?", path ? path : "?");
  return 0;
}
