/* C tests of libchatseal: the shared envelope vectors, every bad input, and a
 * multi-threaded seal/open stress, and the wrapped keyring vectors.
 * Usage: test_chatseal VECTORS.tsv WRAP_VECTORS.tsv
 * Prints "N passed, M failed" and exits non-zero on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chatseal.h"

static int passed, failed;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (cond) {                                                              \
      passed++;                                                              \
    } else {                                                                 \
      failed++;                                                              \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

#define RC(call, want) CHECK((call) == (want), "got %s", chatseal_result_name((uint32_t)(call)))

/* Decodes hex ("-" is empty) into a new buffer; *len gets its length. */
static uint8_t *unhex(const char *s, size_t *len) {
  if (strcmp(s, "-") == 0) { *len = 0; return malloc(1); }
  size_t n = strlen(s) / 2;
  uint8_t *out = malloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(s + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
  out[n] = 0;
  *len = n;
  return out;
}

static chatseal_sealer *sealer_from_json(const char *json, size_t len) {
  chatseal_keyring *kr = NULL;
  chatseal_sealer *s = NULL;
  if (chatseal_keyring_from_json(json, len, &kr) != CHATSEAL_OK) return NULL;
  if (chatseal_sealer_new(kr, &s) != CHATSEAL_OK) s = NULL;
  chatseal_keyring_free(kr);
  return s;
}

/* A second master key (32 zero bytes) to rotate to in the rewrap tests. */
#define NEW_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

/* Rewraps a valid vector under a keyring whose primary is a newer key: the
 * result opens with the new key alone, to the same plaintext, with the same
 * room, key epoch and context; rewrapping it again is a no-op (*out_len 0). */
static void rewrap_valid_case(const char *name, const char *master, unsigned long old_id, uint32_t epoch,
                              const uint8_t *room, size_t room_len, const uint8_t *ctx, size_t ctx_len,
                              const uint8_t *pt, size_t pt_len, const char *envelope) {
  unsigned long new_id = old_id == 4294967295UL ? old_id - 1 : old_id + 1;
  char json[384];
  int n = snprintf(json, sizeof json,
                   "{\"primary\":%lu,\"min_decrypt\":0,\"keys\":[{\"id\":%lu,\"key\":\"%s\"},"
                   "{\"id\":%lu,\"key\":\"%s\"}]}",
                   new_id, old_id, master, new_id, NEW_KEY);
  chatseal_sealer *both = sealer_from_json(json, (size_t)n);
  n = snprintf(json, sizeof json, "{\"primary\":%lu,\"min_decrypt\":0,\"keys\":[{\"id\":%lu,\"key\":\"%s\"}]}",
               new_id, new_id, NEW_KEY);
  chatseal_sealer *only_new = sealer_from_json(json, (size_t)n);
  n = snprintf(json, sizeof json, "{\"primary\":%lu,\"min_decrypt\":0,\"keys\":[{\"id\":%lu,\"key\":\"%s\"}]}",
               old_id, old_id, master);
  chatseal_sealer *only_old = sealer_from_json(json, (size_t)n);
  CHECK(both && only_new && only_old, "%s: rewrap keyrings", name);
  if (!both || !only_new || !only_old) goto done;
  const char *r = (const char *)room;
  size_t text_len = strlen(envelope), need = 0, got = 0;
  const uint32_t other_epoch = epoch == 0 ? 1 : epoch - 1;

  /* Text form: size query is exact, result is under the new key. */
  RC(chatseal_rewrap_text_epoch(both, r, room_len, epoch, ctx, ctx_len, envelope, text_len, NULL, 0, &need), CHATSEAL_OK);
  CHECK(need == text_len + 1, "%s: rewrap_text size %zu", name, need);
  char *fresh = malloc(need);
  RC(chatseal_rewrap_text_epoch(both, r, room_len, epoch, ctx, ctx_len, envelope, text_len, fresh, need, &got), CHATSEAL_OK);
  CHECK(got == need && strlen(fresh) + 1 == got && strcmp(fresh, envelope) != 0, "%s: rewrapped text", name);
  uint8_t *plain = malloc(pt_len + 1);
  RC(chatseal_open_text_epoch(only_new, r, room_len, epoch, ctx, ctx_len, fresh, got - 1, plain, pt_len, &got), CHATSEAL_OK);
  CHECK(got == pt_len && memcmp(plain, pt, pt_len) == 0, "%s: rewrapped text opens to the plaintext", name);
  RC(chatseal_open_text_epoch(only_new, "elsewhere", 9, epoch, ctx, ctx_len, fresh, strlen(fresh), plain, pt_len, &got),
     CHATSEAL_BAD_TAG);
  RC(chatseal_open_text_epoch(only_old, r, room_len, epoch, ctx, ctx_len, fresh, strlen(fresh), plain, pt_len, &got),
     CHATSEAL_UNKNOWN_KEY);
  RC(chatseal_open_text_epoch(only_new, r, room_len, other_epoch, ctx, ctx_len, fresh, strlen(fresh), plain, pt_len,
                              &got),
     CHATSEAL_BAD_TAG);
  /* Already under the primary: a no-op that says so, buffer untouched. */
  char *again = malloc(need);
  memset(again, 0x55, need);
  got = 777;
  RC(chatseal_rewrap_text_epoch(both, r, room_len, epoch, ctx, ctx_len, fresh, strlen(fresh), again, need, &got), CHATSEAL_OK);
  CHECK(got == 0 && (uint8_t)again[0] == 0x55, "%s: rewrap under the primary wrote %zu", name, got);
  got = 777;
  RC(chatseal_rewrap_text_epoch(only_old, r, room_len, epoch, ctx, ctx_len, envelope, text_len, again, need, &got), CHATSEAL_OK);
  CHECK(got == 0, "%s: own primary not unchanged", name);
  /* Wrong room, epoch or context: the errors of open, nothing written. */
  RC(chatseal_rewrap_text_epoch(both, r, room_len, other_epoch, ctx, ctx_len, envelope, text_len, again, need, &got),
     CHATSEAL_BAD_TAG);
  RC(chatseal_rewrap_text_epoch(both, "elsewhere", 9, epoch, ctx, ctx_len, envelope, text_len, again, need, &got), CHATSEAL_BAD_TAG);
  RC(chatseal_rewrap_text_epoch(both, r, room_len, epoch, (const uint8_t *)"x", 1, envelope, text_len, again, need, &got),
     CHATSEAL_BAD_TAG);
  CHECK((uint8_t)again[0] == 0x55, "%s: written on failure", name);

  /* Binary form, from an envelope freshly sealed under the old key. */
  size_t env_len = chatseal_sealed_len(pt_len);
  uint8_t *old_env = malloc(env_len), *new_env = malloc(env_len);
  RC(chatseal_seal_epoch(only_old, r, room_len, epoch, ctx, ctx_len, pt, pt_len, old_env, env_len, &got), CHATSEAL_OK);
  RC(chatseal_rewrap_epoch(both, r, room_len, epoch, ctx, ctx_len, old_env, env_len, NULL, 0, &need), CHATSEAL_OK);
  CHECK(need == env_len, "%s: rewrap size %zu", name, need);
  RC(chatseal_rewrap_epoch(both, r, room_len, epoch, ctx, ctx_len, old_env, env_len, new_env, env_len - 1, &need),
     CHATSEAL_BUFFER_TOO_SMALL);
  RC(chatseal_rewrap_epoch(both, r, room_len, epoch, ctx, ctx_len, old_env, env_len, new_env, env_len, &got), CHATSEAL_OK);
  uint32_t id = (uint32_t)new_env[2] << 24 | (uint32_t)new_env[3] << 16 | (uint32_t)new_env[4] << 8 | new_env[5];
  CHECK(got == env_len && id == new_id, "%s: rewrapped to key %u", name, id);
  RC(chatseal_open_epoch(only_new, r, room_len, epoch, ctx, ctx_len, new_env, env_len, plain, pt_len, &got), CHATSEAL_OK);
  CHECK(got == pt_len && memcmp(plain, pt, pt_len) == 0, "%s: rewrapped binary opens", name);
  RC(chatseal_rewrap_epoch(both, r, room_len, epoch, ctx, ctx_len, new_env, env_len, old_env, env_len, &got), CHATSEAL_OK);
  CHECK(got == 0, "%s: binary rewrap under the primary", name);
  free(old_env); free(new_env); free(again); free(plain); free(fresh);
done:
  chatseal_sealer_free(both);
  chatseal_sealer_free(only_new);
  chatseal_sealer_free(only_old);
}

/* A valid vector, at its key epoch through the _epoch forms. The plain forms
 * are epoch 0: they must agree for an epoch-0 case and fail (another room
 * key, BAD_TAG) for any other, so a library that dropped the epoch fails. */
static void valid_case(char **f) {
  const char *name = f[1], *master = f[2], *envelope = f[9];
  unsigned long key_id = strtoul(f[3], NULL, 10);
  uint32_t epoch = (uint32_t)strtoul(f[4], NULL, 10);
  size_t room_len, ctx_len, pt_len, rk_len;
  uint8_t *room = unhex(f[5], &room_len), *ctx = unhex(f[6], &ctx_len);
  uint8_t *pt = unhex(f[7], &pt_len), *rk = unhex(f[8], &rk_len);
  const char *r = (const char *)room;
  char json[256];
  int n = snprintf(json, sizeof json, "{\"primary\":%lu,\"min_decrypt\":%lu,\"keys\":[{\"id\":%lu,\"key\":\"%s\"}]}",
                   key_id, key_id, key_id, master);
  chatseal_keyring *kr = NULL;
  RC(chatseal_keyring_from_json(json, (size_t)n, &kr), CHATSEAL_OK);
  chatseal_sealer *s = NULL;
  RC(chatseal_sealer_new(kr, &s), CHATSEAL_OK);

  uint8_t derived[CHATSEAL_KEY_LEN], at_zero[CHATSEAL_KEY_LEN];
  RC(chatseal_keyring_room_key_epoch(kr, (uint32_t)key_id, r, room_len, epoch, derived), CHATSEAL_OK);
  CHECK(rk_len == 32 && memcmp(derived, rk, 32) == 0, "%s: room key differs", name);
  RC(chatseal_keyring_room_key(kr, (uint32_t)key_id, r, room_len, at_zero), CHATSEAL_OK);
  CHECK((memcmp(at_zero, rk, 32) == 0) == (epoch == 0), "%s: the plain room key is not epoch 0", name);

  /* Open the committed envelope: size query, then the real call. */
  size_t need = 0, got = 0;
  size_t text_len = strlen(envelope);
  RC(chatseal_open_text_epoch(s, r, room_len, epoch, ctx, ctx_len, envelope, text_len, NULL, 0, &need), CHATSEAL_OK);
  CHECK(need == pt_len, "%s: size query %zu != %zu", name, need, pt_len);
  uint8_t *out = malloc(need + 1);
  RC(chatseal_open_text_epoch(s, r, room_len, epoch, ctx, ctx_len, envelope, text_len, out, need, &got), CHATSEAL_OK);
  CHECK(got == pt_len && memcmp(out, pt, pt_len) == 0, "%s: plaintext differs", name);
  memset(out, 0xAA, need + 1);
  got = 12345;
  chatseal_result plain_rc = chatseal_open_text(s, r, room_len, ctx, ctx_len, envelope, text_len, out, need, &got);
  if (epoch == 0) {
    CHECK(plain_rc == CHATSEAL_OK && got == pt_len && memcmp(out, pt, pt_len) == 0, "%s: plain open", name);
  } else {
    CHECK(plain_rc == CHATSEAL_BAD_TAG && got == 12345 && out[0] == 0xAA, "%s: plain open gave %s", name,
          chatseal_result_name(plain_rc));
  }
  free(out);

  /* Seal fresh (binary and text) and open again, at the epoch only. */
  size_t env_len = chatseal_sealed_len(pt_len);
  uint8_t *env = malloc(env_len);
  RC(chatseal_seal_epoch(s, r, room_len, epoch, ctx, ctx_len, pt, pt_len, env, env_len, &got), CHATSEAL_OK);
  CHECK(got == pt_len + CHATSEAL_OVERHEAD && env[0] == 1 && env[1] == 1, "%s: envelope header", name);
  uint8_t *back = malloc(pt_len + 1);
  RC(chatseal_open_epoch(s, r, room_len, epoch, ctx, ctx_len, env, env_len, back, pt_len, &got), CHATSEAL_OK);
  CHECK(got == pt_len && memcmp(back, pt, pt_len) == 0, "%s: round trip", name);
  RC(chatseal_open_epoch(s, r, room_len, epoch ^ 1, ctx, ctx_len, env, env_len, back, pt_len, &got), CHATSEAL_BAD_TAG);
  RC(chatseal_open(s, r, room_len, ctx, ctx_len, env, env_len, back, pt_len, &got),
     epoch == 0 ? CHATSEAL_OK : CHATSEAL_BAD_TAG);
  RC(chatseal_seal(s, r, room_len, ctx, ctx_len, pt, pt_len, env, env_len, &got), CHATSEAL_OK);
  RC(chatseal_open_epoch(s, r, room_len, 0, ctx, ctx_len, env, env_len, back, pt_len, &got), CHATSEAL_OK);
  size_t tneed = 0;
  RC(chatseal_seal_text_epoch(s, r, room_len, epoch, ctx, ctx_len, pt, pt_len, NULL, 0, &tneed), CHATSEAL_OK);
  char *text = malloc(tneed);
  RC(chatseal_seal_text_epoch(s, r, room_len, epoch, ctx, ctx_len, pt, pt_len, text, tneed, &got), CHATSEAL_OK);
  CHECK(got == tneed && strlen(text) + 1 == tneed && strlen(text) == strlen(envelope), "%s: text length", name);
  RC(chatseal_open_text_epoch(s, r, room_len, epoch, ctx, ctx_len, text, tneed - 1, back, pt_len, &got), CHATSEAL_OK);
  CHECK(got == pt_len && memcmp(back, pt, pt_len) == 0, "%s: text round trip", name);
  RC(chatseal_open_text_epoch(s, r, room_len, epoch ^ 1, ctx, ctx_len, text, tneed - 1, back, pt_len, &got),
     CHATSEAL_BAD_TAG);
  free(text); free(back); free(env);
  rewrap_valid_case(name, master, key_id, epoch, room, room_len, ctx, ctx_len, pt, pt_len, envelope);
  chatseal_sealer_free(s);
  chatseal_keyring_free(kr);
  free(room); free(ctx); free(pt); free(rk);
}

static void invalid_case(char **f) {
  const char *name = f[1], *want = f[7];
  uint32_t epoch = (uint32_t)strtoul(f[3], NULL, 10);
  size_t kr_len, room_len, ctx_len, env_len;
  uint8_t *kr = unhex(f[2], &kr_len), *room = unhex(f[4], &room_len);
  uint8_t *ctx = unhex(f[5], &ctx_len), *env = unhex(f[6], &env_len);
  chatseal_sealer *s = sealer_from_json((const char *)kr, kr_len);
  CHECK(s != NULL, "%s: keyring", name);
  uint8_t out[256];
  memset(out, 0xAA, sizeof out);
  size_t got = 12345;
  chatseal_result rc = chatseal_open_text_epoch(s, (const char *)room, room_len, epoch, ctx, ctx_len, (const char *)env,
                                                env_len, out, sizeof out, &got);
  CHECK(strcmp(chatseal_result_name(rc), want) == 0, "%s: got %s, want %s", name, chatseal_result_name(rc), want);
  int untouched = 1;
  for (size_t i = 0; i < sizeof out; i++) untouched &= out[i] == 0xAA;
  CHECK(untouched, "%s: output written on failure", name);
  /* Rewrap fails exactly as open does, and writes nothing. */
  got = 12345;
  rc = chatseal_rewrap_text_epoch(s, (const char *)room, room_len, epoch, ctx, ctx_len, (const char *)env, env_len,
                                  (char *)out, sizeof out, &got);
  CHECK(strcmp(chatseal_result_name(rc), want) == 0, "%s: rewrap got %s, want %s", name, chatseal_result_name(rc), want);
  for (size_t i = 0; i < sizeof out; i++) untouched &= out[i] == 0xAA;
  CHECK(untouched, "%s: rewrap output written on failure", name);
  chatseal_sealer_free(s);
  free(kr); free(room); free(ctx); free(env);
}

static void run_vectors(const char *path) {
  FILE *fp = fopen(path, "r");
  CHECK(fp != NULL, "cannot open %s", path);
  if (!fp) return;
  char *line = NULL;
  size_t cap = 0;
  int valid = 0, invalid = 0, epochs_seen = 0;
  while (getline(&line, &cap, fp) > 0) {
    char *f[12] = {0};
    int nf = 0;
    for (char *tok = strtok(line, " \n"); tok && nf < 12; tok = strtok(NULL, " \n")) f[nf++] = tok;
    if (nf == 10 && f[0][0] == 'V') { epochs_seen += strcmp(f[4], "0") != 0; valid_case(f); valid++; }
    else if (nf == 8 && f[0][0] == 'I') { invalid_case(f); invalid++; }
    else CHECK(0, "bad vector line with %d fields", nf);
  }
  free(line);
  fclose(fp);
  CHECK(valid >= 20 && invalid >= 7, "only %d valid and %d invalid vectors", valid, invalid);
  CHECK(epochs_seen >= 4, "only %d valid vectors at an epoch above 0", epochs_seen);
}

/* Issue 15 item 20: an output that overlaps an input (in-place sealing, or
 * an out_len inside a buffer) is refused and nothing is written; before,
 * chatseal_seal(out == plaintext) returned OK with a corrupt envelope. */
static void overlapping_buffers(void) {
  chatseal_keyring *kr = NULL;
  chatseal_sealer *s = NULL;
  RC(chatseal_keyring_generate(&kr), CHATSEAL_OK);
  RC(chatseal_sealer_new(kr, &s), CHATSEAL_OK);
  const uint8_t *c = (const uint8_t *)"ctx";
  _Alignas(16) uint8_t buf[256];
  uint8_t copy[256];
  size_t len = 0;
  memset(buf, 0, sizeof buf);
  memcpy(buf, "hello, overlap", 14);
  memcpy(copy, buf, sizeof buf);

  /* Seal in place, and with out starting inside or ending inside the input. */
  RC(chatseal_seal(s, "r", 1, c, 3, buf, 14, buf, sizeof buf, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, c, 3, buf + 40, 14, buf, sizeof buf - 40, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, c, 3, buf, 14, buf + 13, 100, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, buf + 100, 3, buf, 14, buf + 50, 60, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal(s, (const char *)buf + 60, 1, c, 3, buf, 14, buf + 20, 60, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal_text(s, "r", 1, c, 3, buf, 14, (char *)buf, sizeof buf, &len), CHATSEAL_INVALID_ARGUMENT);
  CHECK(memcmp(buf, copy, sizeof buf) == 0, "%s", "a refused seal wrote to its buffer");
  /* out_len inside the output or an input. */
  RC(chatseal_seal(s, "r", 1, c, 3, buf, 14, buf + 64, 128, (size_t *)(void *)(buf + 128)), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, c, 3, buf, 16, NULL, 0, (size_t *)(void *)buf), CHATSEAL_INVALID_ARGUMENT);
  CHECK(memcmp(buf, copy, sizeof buf) == 0, "%s", "a refused size query wrote to its input");
  /* Adjacent is not overlapping. */
  RC(chatseal_seal(s, "r", 1, c, 3, buf, 14, buf + 14, 48, &len), CHATSEAL_OK);
  CHECK(len == 48, "sealed %zu", len);

  /* Open, open_text, rewrap, rewrap_text in place. */
  uint8_t env[64];
  RC(chatseal_seal(s, "r", 1, c, 3, (const uint8_t *)"hello, overlap", 14, env, sizeof env, &len), CHATSEAL_OK);
  size_t env_len = len;
  RC(chatseal_open(s, "r", 1, c, 3, env, env_len, env, sizeof env, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_open(s, "r", 1, c, 3, env, env_len, env + 18, 20, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_open(s, "r", 1, env + 40, 1, env, 34, env + 35, 10, &len), CHATSEAL_INVALID_ARGUMENT);
  char text[128];
  RC(chatseal_seal_text(s, "r", 1, c, 3, (const uint8_t *)"hi", 2, text, sizeof text, &len), CHATSEAL_OK);
  size_t text_len = len - 1;
  RC(chatseal_open_text(s, "r", 1, c, 3, text, text_len, (uint8_t *)text, sizeof text, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_open(s, "r", 1, c, 3, env, env_len, (uint8_t *)text, sizeof text, &len), CHATSEAL_OK);
  CHECK(len == 14 && memcmp(text, "hello, overlap", 14) == 0, "%s", "open after refusals");
  uint32_t id;
  RC(chatseal_keyring_rotate(kr, &id), CHATSEAL_OK);
  RC(chatseal_sealer_set_keyring(s, kr), CHATSEAL_OK);
  RC(chatseal_rewrap(s, "r", 1, c, 3, env, env_len, env, sizeof env, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal_text(s, "r", 1, c, 3, (const uint8_t *)"hi", 2, text, sizeof text, &len), CHATSEAL_OK);
  RC(chatseal_rewrap_text(s, "r", 1, c, 3, text, len - 1, text, sizeof text, &len), CHATSEAL_INVALID_ARGUMENT);
  uint8_t out[64];
  RC(chatseal_open(s, "r", 1, c, 3, env, env_len, out, sizeof out, &len), CHATSEAL_OK);
  CHECK(len == 14 && memcmp(out, "hello, overlap", 14) == 0, "%s", "a refused rewrap changed the envelope");

  /* A room key written over its own room name. */
  char room[CHATSEAL_KEY_LEN] = "lobby";
  RC(chatseal_keyring_room_key(kr, 1, room, 5, (uint8_t *)room), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_keyring_room_key_epoch(kr, 1, room, 5, 3, (uint8_t *)room + 2), CHATSEAL_INVALID_ARGUMENT);
  CHECK(strcmp(room, "lobby") == 0, "%s", "room overwritten");
  /* And the _epoch forms refuse sealing or opening in place too. */
  RC(chatseal_seal_epoch(s, "r", 1, 7, c, 3, buf, 14, buf, sizeof buf, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal_text_epoch(s, "r", 1, 7, c, 3, buf, 14, (char *)buf + 4, 100, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_seal_epoch(s, "r", 1, 7, c, 3, (const uint8_t *)"hello, overlap", 14, env, sizeof env, &len),
     CHATSEAL_OK);
  env_len = len;
  RC(chatseal_open_epoch(s, "r", 1, 7, c, 3, env, env_len, env, sizeof env, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_rewrap_epoch(s, "r", 1, 7, c, 3, env, env_len, env + 1, sizeof env - 1, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_open_epoch(s, "r", 1, 7, c, 3, env, env_len, out, sizeof out, &len), CHATSEAL_OK);
  CHECK(len == 14 && memcmp(out, "hello, overlap", 14) == 0, "%s", "a refused _epoch call changed the envelope");
  chatseal_sealer_free(s);
  chatseal_keyring_free(kr);
}

static void bad_inputs(void) {
  chatseal_keyring *kr = NULL;
  chatseal_sealer *s = NULL;
  RC(chatseal_keyring_generate(NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_keyring_generate(&kr), CHATSEAL_OK);
  RC(chatseal_sealer_new(NULL, &s), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_sealer_new(kr, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_sealer_new(kr, &s), CHATSEAL_OK);
  chatseal_keyring_free(NULL);
  chatseal_sealer_free(NULL);

  uint8_t env[64], out[64];
  size_t len = 0;
  /* NULL handle, NULL out_len, NULL with non-zero length; (NULL, 0) is empty. */
  RC(chatseal_seal(NULL, "r", 1, NULL, 0, (const uint8_t *)"x", 1, env, sizeof env, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, NULL, 0, (const uint8_t *)"x", 1, env, sizeof env, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal(s, NULL, 1, NULL, 0, (const uint8_t *)"x", 1, env, sizeof env, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, NULL, 5, (const uint8_t *)"x", 1, env, sizeof env, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal(s, "r", 1, NULL, 0, NULL, 3, env, sizeof env, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal(s, NULL, 0, NULL, 0, NULL, 0, env, sizeof env, &len), CHATSEAL_OK);
  CHECK(len == CHATSEAL_OVERHEAD, "empty seal is %zu bytes", len);
  RC(chatseal_open(s, NULL, 0, NULL, 0, env, len, NULL, 0, &len), CHATSEAL_OK);
  CHECK(len == 0, "empty open size %zu", len);

  /* Short buffers: the size needed is reported and nothing is written. */
  memset(env, 0xAA, sizeof env);
  RC(chatseal_seal(s, "r", 1, NULL, 0, (const uint8_t *)"hello", 5, env, 38, &len), CHATSEAL_BUFFER_TOO_SMALL);
  CHECK(len == 39 && env[0] == 0xAA, "needed %zu", len);
  RC(chatseal_seal(s, "r", 1, (const uint8_t *)"c", 1, (const uint8_t *)"hello", 5, env, sizeof env, &len), CHATSEAL_OK);
  size_t env_len = len;
  RC(chatseal_open(s, "r", 1, (const uint8_t *)"c", 1, env, env_len, out, 4, &len), CHATSEAL_BUFFER_TOO_SMALL);
  CHECK(len == 5, "open needs %zu", len);

  /* Wrong room, wrong context, tampering, truncation, invalid rooms and UTF-8. */
  RC(chatseal_open(s, "q", 1, (const uint8_t *)"c", 1, env, env_len, out, sizeof out, &len), CHATSEAL_BAD_TAG);
  RC(chatseal_open(s, "r", 1, (const uint8_t *)"d", 1, env, env_len, out, sizeof out, &len), CHATSEAL_BAD_TAG);
  for (size_t i = 0; i < env_len; i++) {
    env[i] ^= 0x04;
    chatseal_result rc = chatseal_open(s, "r", 1, (const uint8_t *)"c", 1, env, env_len, out, sizeof out, &len);
    CHECK(rc != CHATSEAL_OK, "flipped byte %zu opened", i);
    env[i] ^= 0x04;
  }
  RC(chatseal_open(s, "r", 1, (const uint8_t *)"c", 1, env, 33, out, sizeof out, &len), CHATSEAL_MALFORMED);
  RC(chatseal_open(s, "r", 1, (const uint8_t *)"c", 1, env, 0, out, sizeof out, &len), CHATSEAL_MALFORMED);
  RC(chatseal_seal(s, "a\0b", 3, NULL, 0, NULL, 0, env, sizeof env, &len), CHATSEAL_INVALID_ROOM);
  RC(chatseal_seal(s, "\xff", 1, NULL, 0, NULL, 0, env, sizeof env, &len), CHATSEAL_INVALID_UTF8);
  RC(chatseal_open_text(s, "r", 1, NULL, 0, "!!!!", 4, out, sizeof out, &len), CHATSEAL_BAD_ENCODING);

  /* The _epoch forms check their arguments as the plain ones do. */
  const uint8_t *c = (const uint8_t *)"c";
  RC(chatseal_seal_epoch(NULL, "r", 1, 1, NULL, 0, c, 1, out, sizeof out, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal_epoch(s, "r", 1, 1, NULL, 0, c, 1, out, sizeof out, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal_epoch(s, NULL, 1, 1, NULL, 0, c, 1, out, sizeof out, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_seal_text_epoch(s, "\xff", 1, 1, NULL, 0, c, 1, (char *)out, sizeof out, &len), CHATSEAL_INVALID_UTF8);
  RC(chatseal_seal_text_epoch(s, "a\nb", 3, 1, NULL, 0, c, 1, (char *)out, sizeof out, &len), CHATSEAL_INVALID_ROOM);
  RC(chatseal_open_epoch(s, "r", 1, 1, c, 1, NULL, 40, out, sizeof out, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_open_epoch(s, "r", 1, 0, c, 1, env, env_len, out, sizeof out, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_open_epoch(s, "r", 1, 0, c, 1, env, 33, out, sizeof out, &len), CHATSEAL_MALFORMED);
  RC(chatseal_open_epoch(s, "r", 1, 0, c, 1, env, env_len, out, 4, &len), CHATSEAL_BUFFER_TOO_SMALL);
  CHECK(len == 5, "open_epoch needs %zu", len);
  RC(chatseal_open_text_epoch(NULL, "r", 1, 1, NULL, 0, "!!!!", 4, out, sizeof out, &len), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_open_text_epoch(s, "r", 1, 1, NULL, 0, "!!!!", 4, out, sizeof out, &len), CHATSEAL_BAD_ENCODING);
  RC(chatseal_rewrap_epoch(s, "r", 1, 0, c, 1, env, env_len, out, sizeof out, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_rewrap_epoch(s, "a\0b", 3, 0, c, 1, env, env_len, out, sizeof out, &len), CHATSEAL_INVALID_ROOM);
  RC(chatseal_rewrap_epoch(s, "r", 1, 1, c, 1, env, env_len, out, sizeof out, &len), CHATSEAL_BAD_TAG);
  RC(chatseal_rewrap_text_epoch(NULL, "r", 1, 1, NULL, 0, "!!!!", 4, (char *)out, sizeof out, &len),
     CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_rewrap_text_epoch(s, "r", 1, 1, NULL, 0, "!!!!", 4, (char *)out, sizeof out, &len), CHATSEAL_BAD_ENCODING);
  uint8_t key[CHATSEAL_KEY_LEN];
  RC(chatseal_keyring_room_key_epoch(NULL, 1, "r", 1, 1, key), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_keyring_room_key_epoch(kr, 1, "r", 1, 1, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_keyring_room_key_epoch(kr, 1, NULL, 1, 1, key), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_keyring_room_key_epoch(kr, 9, "r", 1, 1, key), CHATSEAL_UNKNOWN_KEY);
  RC(chatseal_keyring_room_key_epoch(kr, 1, "\x01", 1, 1, key), CHATSEAL_INVALID_ROOM);
  /* The largest epoch is a room key like any other; each epoch's differs. */
  uint8_t key_max[CHATSEAL_KEY_LEN], key_zero[CHATSEAL_KEY_LEN];
  RC(chatseal_keyring_room_key_epoch(kr, 1, "r", 1, UINT32_MAX, key_max), CHATSEAL_OK);
  RC(chatseal_keyring_room_key_epoch(kr, 1, "r", 1, 0, key_zero), CHATSEAL_OK);
  RC(chatseal_keyring_room_key(kr, 1, "r", 1, key), CHATSEAL_OK);
  CHECK(memcmp(key, key_zero, sizeof key) == 0 && memcmp(key, key_max, sizeof key) != 0, "%s", "epoch room keys");
  memset(key, 0, sizeof key);
  memset(key_max, 0, sizeof key_max);
  memset(key_zero, 0, sizeof key_zero);
  RC(chatseal_keyring_from_json("{", 1, &kr), CHATSEAL_INVALID_KEYRING);
  RC(chatseal_keyring_from_json(NULL, 0, &kr), CHATSEAL_INVALID_KEYRING);

  /* Rotation: old envelopes still open, new ones use the new id. */
  uint32_t id = 0;
  RC(chatseal_keyring_rotate(kr, NULL), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_keyring_rotate(kr, &id), CHATSEAL_OK);
  CHECK(id == 2, "rotated to %u", id);
  RC(chatseal_sealer_set_keyring(s, kr), CHATSEAL_OK);
  RC(chatseal_open(s, "r", 1, (const uint8_t *)"c", 1, env, env_len, out, sizeof out, &len), CHATSEAL_OK);
  RC(chatseal_seal(s, "r", 1, NULL, 0, NULL, 0, env, sizeof env, &len), CHATSEAL_OK);
  CHECK(env[5] == 2, "sealed with key %u", env[5]);

  /* Keyring files: saved 0600, loaded back; a loose mode is refused. */
  char path[] = "/tmp/chatseal-c-test-XXXXXX";
  CHECK(mkdtemp(path) != NULL, "mkdtemp");
  char file[64];
  snprintf(file, sizeof file, "%s/kr.json", path);
  RC(chatseal_keyring_save_file(kr, file), CHATSEAL_OK);
  struct stat st;
  CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
  chatseal_keyring *loaded = NULL;
  RC(chatseal_keyring_load_file(file, &loaded), CHATSEAL_OK);
  uint32_t primary = 0;
  RC(chatseal_keyring_primary(loaded, &primary), CHATSEAL_OK);
  CHECK(primary == 2, "loaded primary %u", primary);
  chatseal_keyring_free(loaded);
  chmod(file, 0644);
  loaded = NULL;
  RC(chatseal_keyring_load_file(file, &loaded), CHATSEAL_INSECURE_KEY_FILE);
  CHECK(loaded == NULL, "out written on failure");
  RC(chatseal_keyring_load_file(NULL, &loaded), CHATSEAL_NULL_ARGUMENT);
  unlink(file);
  rmdir(path);

  size_t json_len = 0;
  RC(chatseal_keyring_to_json(kr, NULL, 0, &json_len), CHATSEAL_OK);
  char *json = malloc(json_len);
  RC(chatseal_keyring_to_json(kr, json, json_len, &json_len), CHATSEAL_OK);
  CHECK(strstr(json, "\"primary\": 2") != NULL && strlen(json) + 1 == json_len, "json %s", "");
  memset(json, 0, json_len);
  free(json);

  CHECK(strcmp(chatseal_result_name(CHATSEAL_BAD_TAG), "BAD_TAG") == 0, "name");
  CHECK(strcmp(chatseal_result_name(9999), "UNKNOWN") == 0, "unknown name");
  CHECK(strlen(chatseal_result_message(CHATSEAL_OK)) > 0, "message");
  CHECK(strlen(chatseal_version()) > 0, "version");
  chatseal_sealer_free(s);
  chatseal_keyring_free(kr);
}

struct stress { chatseal_sealer *s; int id; int errors; };

static void *stress_thread(void *arg) {
  struct stress *t = arg;
  char ctx[32], room[16];
  uint8_t env[128], out[128];
  for (int i = 0; i < 3000; i++) {
    int n = snprintf(ctx, sizeof ctx, "t%d-m%d", t->id, i);
    int r = snprintf(room, sizeof room, "room-%d", i % 7);
    size_t len = 0, got = 0;
    if (chatseal_seal(t->s, room, (size_t)r, (const uint8_t *)ctx, (size_t)n, (const uint8_t *)ctx, (size_t)n, env,
                      sizeof env, &len) != CHATSEAL_OK ||
        chatseal_open(t->s, room, (size_t)r, (const uint8_t *)ctx, (size_t)n, env, len, out, sizeof out, &got) !=
            CHATSEAL_OK ||
        got != (size_t)n || memcmp(out, ctx, got) != 0)
      t->errors++;
  }
  return NULL;
}

static void stress(void) {
  chatseal_keyring *kr = NULL;
  chatseal_sealer *s = NULL;
  RC(chatseal_keyring_generate(&kr), CHATSEAL_OK);
  RC(chatseal_sealer_new(kr, &s), CHATSEAL_OK);
  enum { THREADS = 4 };
  pthread_t th[THREADS];
  struct stress st[THREADS];
  for (int i = 0; i < THREADS; i++) {
    st[i] = (struct stress){s, i, 0};
    pthread_create(&th[i], NULL, stress_thread, &st[i]);
  }
  /* Rotate while the workers run: set_keyring is safe concurrently. */
  for (int i = 0; i < 3; i++) {
    uint32_t id;
    RC(chatseal_keyring_rotate(kr, &id), CHATSEAL_OK);
    RC(chatseal_sealer_set_keyring(s, kr), CHATSEAL_OK);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    CHECK(st[i].errors == 0, "thread %d: %d errors", i, st[i].errors);
  }
  chatseal_sealer_free(s);
  chatseal_keyring_free(kr);
}

/* The keyring's JSON form, as a new NUL-terminated string (free it). */
static char *keyring_json(const chatseal_keyring *kr) {
  size_t need = 0;
  if (chatseal_keyring_to_json(kr, NULL, 0, &need) != CHATSEAL_OK) return NULL;
  char *out = malloc(need);
  if (chatseal_keyring_to_json(kr, out, need, &need) != CHATSEAL_OK) { free(out); return NULL; }
  return out;
}

/* A wrapped keyring vector: the file opens with the KEK to exactly the
 * keyring that was sealed. With the passphrase it is opened too, but only at
 * OWASP's minimum argon2id parameters: the 64 MiB default under valgrind
 * would take most of a minute, and its derived KEK is checked by the KEK
 * open (it is that case's `kek`) and by the Rust tests. */
static void wrap_valid_case(char **f) {
  size_t kek_len, pass_len, file_len, json_len;
  uint8_t *kek = unhex(f[2], &kek_len), *pass = unhex(f[3], &pass_len);
  uint8_t *file = unhex(f[5], &file_len), *json = unhex(f[6], &json_len);
  unsigned long m_cost = strtoul(f[4], NULL, 10);
  chatseal_keyring *kr = NULL;
  RC(chatseal_keyring_unwrap((const char *)file, file_len, kek, kek_len, &kr), CHATSEAL_OK);
  char *got = kr ? keyring_json(kr) : NULL;
  CHECK(got && strlen(got) == json_len && memcmp(got, json, json_len) == 0, "%s: keyring differs", f[1]);
  free(got);
  chatseal_keyring_free(kr);
  if (pass_len > 0 && m_cost == 19456) {
    kr = NULL;
    RC(chatseal_keyring_unwrap_passphrase((const char *)file, file_len, pass, pass_len, &kr), CHATSEAL_OK);
    got = kr ? keyring_json(kr) : NULL;
    CHECK(got && strlen(got) == json_len && memcmp(got, json, json_len) == 0, "%s: passphrase keyring differs", f[1]);
    free(got);
    chatseal_keyring_free(kr);
  }
  free(kek); free(pass); free(file); free(json);
}

static void wrap_invalid_case(char **f) {
  size_t kek_len, pass_len, file_len;
  uint8_t *kek = unhex(f[2], &kek_len), *pass = unhex(f[3], &pass_len);
  uint8_t *file = unhex(f[4], &file_len);
  chatseal_keyring *kr = NULL;
  uint32_t rc = strcmp(f[3], "-") != 0
                    ? chatseal_keyring_unwrap_passphrase((const char *)file, file_len, pass, pass_len, &kr)
                    : chatseal_keyring_unwrap((const char *)file, file_len, kek, kek_len, &kr);
  CHECK(strcmp(chatseal_result_name(rc), f[5]) == 0, "%s: got %s, want %s", f[1], chatseal_result_name(rc), f[5]);
  CHECK(kr == NULL, "%s: keyring written on failure", f[1]);
  chatseal_keyring_free(kr);
  free(kek); free(pass); free(file);
}

static void run_wrap_vectors(const char *path) {
  FILE *fp = fopen(path, "r");
  CHECK(fp != NULL, "cannot open %s", path);
  if (!fp) return;
  char *line = NULL;
  size_t cap = 0;
  int valid = 0, invalid = 0;
  while (getline(&line, &cap, fp) > 0) {
    char *f[8] = {0};
    int nf = 0;
    for (char *tok = strtok(line, " \n"); tok && nf < 8; tok = strtok(NULL, " \n")) f[nf++] = tok;
    if (nf == 7 && f[0][0] == 'W') { wrap_valid_case(f); valid++; }
    else if (nf == 6 && f[0][0] == 'X') { wrap_invalid_case(f); invalid++; }
    else CHECK(0, "bad wrap vector line with %d fields", nf);
  }
  free(line);
  fclose(fp);
  CHECK(valid >= 5 && invalid >= 20, "only %d valid and %d invalid wrap vectors", valid, invalid);
}

/* Wrap and unwrap through the C API: size query, too small a buffer, a
 * round trip under a KEK and a passphrase, and the wrong secret refused. */
static void wrap_round_trip(void) {
  chatseal_keyring *kr = NULL, *back = NULL;
  RC(chatseal_keyring_generate(&kr), CHATSEAL_OK);
  uint8_t kek[32], other[32];
  memset(kek, 0x11, sizeof kek);
  memset(other, 0x22, sizeof other);
  size_t need = 0, len = 0;
  RC(chatseal_keyring_wrap(kr, kek, 32, NULL, 0, &need), CHATSEAL_OK);
  CHECK(need > 100, "size %zu", need);
  char *buf = malloc(need);
  RC(chatseal_keyring_wrap(kr, kek, 32, buf, need - 1, &len), CHATSEAL_BUFFER_TOO_SMALL);
  CHECK(len == need, "needed %zu, told %zu", need, len);
  RC(chatseal_keyring_wrap(kr, kek, 31, buf, need, &len), CHATSEAL_INVALID_ARGUMENT);
  RC(chatseal_keyring_wrap(kr, kek, 32, buf, need, &len), CHATSEAL_OK);
  CHECK(len == need && buf[len - 1] == 0 && strlen(buf) == len - 1, "length %zu of %zu", len, need);
  RC(chatseal_keyring_unwrap(buf, len - 1, other, 32, &back), CHATSEAL_WRONG_KEK);
  CHECK(back == NULL, "keyring written on failure");
  RC(chatseal_keyring_unwrap(buf, len - 1, kek, 32, &back), CHATSEAL_OK);
  char *a = keyring_json(kr), *b = back ? keyring_json(back) : NULL;
  CHECK(a && b && strcmp(a, b) == 0, "round trip changed the keyring");
  free(b);
  chatseal_keyring_free(back);
  back = NULL;
  RC(chatseal_keyring_unwrap(NULL, 10, kek, 32, &back), CHATSEAL_NULL_ARGUMENT);
  RC(chatseal_keyring_unwrap(buf, len - 1, kek, 32, NULL), CHATSEAL_NULL_ARGUMENT);
  free(buf);

  const uint8_t *pass = (const uint8_t *)"tr0ub4dor&3";
  RC(chatseal_keyring_wrap_passphrase(kr, pass, 11, NULL, 0, &need), CHATSEAL_OK);
  buf = malloc(need);
  RC(chatseal_keyring_wrap_passphrase(kr, pass, 11, buf, need, &len), CHATSEAL_OK);
  CHECK(len == need && strstr(buf, "\"argon2id\"") != NULL, "passphrase file");
  RC(chatseal_keyring_unwrap_passphrase(buf, len - 1, (const uint8_t *)"tr0ub4dor&4", 11, &back),
     CHATSEAL_WRONG_KEK);
  RC(chatseal_keyring_unwrap_passphrase(buf, len - 1, pass, 11, &back), CHATSEAL_OK);
  b = back ? keyring_json(back) : NULL;
  CHECK(a && b && strcmp(a, b) == 0, "passphrase round trip changed the keyring");
  free(a); free(b); free(buf);
  chatseal_keyring_free(back);
  chatseal_keyring_free(kr);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s VECTORS.tsv WRAP_VECTORS.tsv\n", argv[0]);
    return 2;
  }
  run_vectors(argv[1]);
  run_wrap_vectors(argv[2]);
  wrap_round_trip();
  bad_inputs();
  overlapping_buffers();
  stress();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
