// C++ tests of chatseal.hpp: RAII, round trips, the shared vectors' invalid
// cases as exceptions with the right code. Usage: test_chatseal_cpp VECTORS.tsv
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "chatseal.hpp"

static int passed = 0, failed = 0;
#define CHECK(cond, what)                                                          \
  do {                                                                             \
    if (cond) ++passed;                                                            \
    else { ++failed; std::cerr << "FAIL " << __LINE__ << ": " << what << "\n"; } \
  } while (0)

static std::string unhex(const std::string& s) {
  std::string out;
  if (s == "-") return out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) out.push_back(static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return out;
}

template <class F>
static std::string code_of(F&& f) {
  try {
    f();
  } catch (const chatseal::error& e) {
    return chatseal_result_name(e.code());
  }
  return "OK";
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto kr = chatseal::keyring::generate();
  chatseal::sealer s(kr);
  auto env = s.seal("lobby", "ctx", "hello, C++");
  CHECK(s.open("lobby", "ctx", env) == "hello, C++", "binary round trip");
  auto text = s.seal_text("lobby", "", std::string("bin\0ary", 7));
  CHECK(s.open_text("lobby", "", text) == std::string("bin\0ary", 7), "text round trip with NUL");
  CHECK(code_of([&] { s.open("other", "ctx", env); }) == "BAD_TAG", "wrong room");
  CHECK(code_of([&] { chatseal::keyring::from_json("{}"); }) == "INVALID_KEYRING", "bad keyring");
  auto old_key = kr.derive_room_key(1, "lobby");
  CHECK(kr.rotate() == 2 && kr.primary() == 2, "rotate");
  s.set_keyring(kr);
  CHECK(s.open("lobby", "ctx", env) == "hello, C++", "old envelope after rotation");
  CHECK(kr.derive_room_key(1, "lobby") == old_key && kr.derive_room_key(2, "lobby") != old_key, "room keys");
  auto rewrapped = s.rewrap("lobby", "ctx", env);
  CHECK(rewrapped && rewrapped->size() == env.size() && (*rewrapped)[5] == 2, "rewrap to key 2");
  CHECK(rewrapped && s.open("lobby", "ctx", *rewrapped) == "hello, C++", "rewrapped opens");
  CHECK(rewrapped && !s.rewrap("lobby", "ctx", *rewrapped), "rewrap under the primary is a no-op");
  CHECK(code_of([&] { s.rewrap("other", "ctx", env); }) == "BAD_TAG", "rewrap in the wrong room");
  auto rewrapped_text = s.rewrap_text("lobby", "", text);
  CHECK(rewrapped_text && rewrapped_text->size() == text.size() && *rewrapped_text != text, "rewrap_text");
  CHECK(rewrapped_text && s.open_text("lobby", "", *rewrapped_text) == std::string("bin\0ary", 7), "rewrapped text opens");
  CHECK(rewrapped_text && !s.rewrap_text("lobby", "", *rewrapped_text), "rewrap_text under the primary");

  // Room key epochs: a rewrap keeps the epoch; the key of each epoch differs.
  auto ek = chatseal::keyring::generate();
  chatseal::sealer es(ek);
  auto at_three = es.seal("lobby", 3, "ctx", "epoch three");
  CHECK(code_of([&] { es.open("lobby", "ctx", at_three); }) == "BAD_TAG", "epoch 3 opened at epoch 0");
  CHECK(ek.rotate() == 2, "rotate");
  es.set_keyring(ek);
  auto moved = es.rewrap("lobby", 3, "ctx", at_three);
  CHECK(moved && (*moved)[5] == 2 && es.open("lobby", 3, "ctx", *moved) == "epoch three", "rewrap at an epoch");
  CHECK(moved && code_of([&] { es.open("lobby", "ctx", *moved); }) == "BAD_TAG", "rewrapped, opened at epoch 0");
  CHECK(ek.derive_room_key(1, "lobby", 3) != ek.derive_room_key(1, "lobby") &&
            ek.derive_room_key(1, "lobby", 0) == ek.derive_room_key(1, "lobby"),
        "epoch keys");

  // Wrapped keyrings: a round trip under a KEK and a passphrase keeps the
  // keys (the room keys they derive), and the wrong secret is WRONG_KEK.
  chatseal::kek key{}, other{};
  key.fill(0x11);
  other.fill(0x22);
  auto wrapped = kr.wrap(key);
  CHECK(wrapped.find("\"chatseal wrapped keyring\"") != std::string::npos, "wrapped file text");
  auto back = chatseal::keyring::unwrap(wrapped, key);
  CHECK(back.primary() == 2 && back.derive_room_key(1, "lobby") == old_key, "unwrap keeps the keys");
  CHECK(code_of([&] { chatseal::keyring::unwrap(wrapped, other); }) == "WRONG_KEK", "wrong KEK");
  auto by_pass = kr.wrap_passphrase("tr0ub4dor&3");
  CHECK(chatseal::keyring::unwrap_passphrase(by_pass, "tr0ub4dor&3").derive_room_key(2, "lobby") ==
            kr.derive_room_key(2, "lobby"),
        "passphrase round trip");
  CHECK(code_of([&] { chatseal::keyring::unwrap_passphrase(by_pass, "tr0ub4dor&4"); }) == "WRONG_KEK",
        "wrong passphrase");

  std::ifstream in(argv[1]);
  std::string line;
  int vectors = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string tag, name, a, b, c, d, e, g, h;
    uint32_t epoch = 0;
    f >> tag >> name;
    if (tag == "V") {
      f >> a >> b >> epoch >> c >> d >> e >> g >> h;  // master, id, epoch, room, ctx, pt, room_key, envelope
      std::string json = "{\"primary\":" + b + ",\"min_decrypt\":" + b + ",\"keys\":[{\"id\":" + b + ",\"key\":\"" + a + "\"}]}";
      auto vk = chatseal::keyring::from_json(json);
      chatseal::sealer vs(vk);
      std::string room = unhex(c), ctx = unhex(d), pt = unhex(e);
      auto id = static_cast<uint32_t>(std::stoul(b));
      auto key = vk.derive_room_key(id, room, epoch);
      CHECK(std::string(key.begin(), key.end()) == unhex(g), name << " (room key)");
      CHECK(vs.open_text(room, epoch, ctx, h) == pt, name);
      // Without an epoch it is epoch 0: the same for an epoch-0 case,
      // another key for any other.
      CHECK(code_of([&] { vs.open_text(room, ctx, h); }) == (epoch == 0 ? "OK" : "BAD_TAG"), name << " (no epoch)");
      CHECK((vk.derive_room_key(id, room) == key) == (epoch == 0), name << " (room key at epoch 0)");
      auto env = vs.seal(room, epoch, ctx, pt);
      CHECK(vs.open(room, epoch, ctx, env) == pt, name << " (round trip)");
      CHECK(code_of([&] { vs.open(room, epoch ^ 1, ctx, env); }) == "BAD_TAG", name << " (other epoch)");
      CHECK(vs.open_text(room, epoch, ctx, vs.seal_text(room, epoch, ctx, pt)) == pt, name << " (text round trip)");
      CHECK(!vs.rewrap(room, epoch, ctx, env) && !vs.rewrap_text(room, epoch, ctx, h), name << " (rewrap no-op)");
      CHECK(code_of([&] { vs.rewrap_text(room, epoch ^ 1, ctx, h); }) == "BAD_TAG", name << " (rewrap other epoch)");
    } else if (tag == "I") {
      f >> a >> epoch >> b >> c >> d >> e;  // keyring json, epoch, room, ctx, envelope, error
      chatseal::sealer vs(chatseal::keyring::from_json(unhex(a)));
      CHECK(code_of([&] { vs.open_text(unhex(b), epoch, unhex(c), unhex(d)); }) == e, name);
      CHECK(code_of([&] { vs.rewrap_text(unhex(b), epoch, unhex(c), unhex(d)); }) == e, name << " (rewrap)");
    }
    ++vectors;
  }
  CHECK(vectors >= 54, "vectors read: " << vectors);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
