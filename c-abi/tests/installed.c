/* Built by `make install-check` against an installed libchatseal, found
 * through pkg-config: the header and the library agree on the version. */
#include <chatseal.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  const char *v = chatseal_version();
  if (v == NULL || strlen(v) == 0) {
    fprintf(stderr, "no version from the installed library\n");
    return 1;
  }
  printf("installed libchatseal %s\n", v);
  return 0;
}
