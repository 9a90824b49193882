// chatseal.hpp: header-only C++17 wrapper over chatseal.h.
// RAII handles, std::string / std::vector, and chatseal::error carrying the
// result code. Hand-written; it only calls the C API.
#ifndef CHATSEAL_HPP
#define CHATSEAL_HPP

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chatseal.h"

namespace chatseal {

// Thrown by every wrapper call that fails; code() is the C result code.
class error : public std::runtime_error {
 public:
  explicit error(chatseal_result code)
      : std::runtime_error(std::string(chatseal_result_name(code)) + ": " + chatseal_result_message(code)),
        code_(code) {}
  chatseal_result code() const noexcept { return code_; }

 private:
  chatseal_result code_;
};

namespace detail {
inline void check(chatseal_result rc) {
  if (rc != CHATSEAL_OK) throw error(rc);
}
struct keyring_deleter { void operator()(chatseal_keyring* k) const noexcept { chatseal_keyring_free(k); } };
struct sealer_deleter { void operator()(chatseal_sealer* s) const noexcept { chatseal_sealer_free(s); } };
inline const uint8_t* bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }
}  // namespace detail

using room_key = std::array<uint8_t, CHATSEAL_KEY_LEN>;
// A key-encryption key: 32 bytes kept apart from the wrapped keyring.
using kek = std::array<uint8_t, CHATSEAL_KEY_LEN>;

class keyring {
 public:
  static keyring generate() {
    chatseal_keyring* k = nullptr;
    detail::check(chatseal_keyring_generate(&k));
    return keyring(k);
  }
  static keyring from_json(std::string_view json) {
    chatseal_keyring* k = nullptr;
    detail::check(chatseal_keyring_from_json(json.data(), json.size(), &k));
    return keyring(k);
  }
  static keyring load_file(const std::string& path) {
    chatseal_keyring* k = nullptr;
    detail::check(chatseal_keyring_load_file(path.c_str(), &k));
    return keyring(k);
  }
  void save_file(const std::string& path) const { detail::check(chatseal_keyring_save_file(get(), path.c_str())); }
  // Adds a fresh key, makes it primary, returns its id.
  uint32_t rotate() {
    uint32_t id = 0;
    detail::check(chatseal_keyring_rotate(handle_.get(), &id));
    return id;
  }
  uint32_t primary() const {
    uint32_t id = 0;
    detail::check(chatseal_keyring_primary(get(), &id));
    return id;
  }
  // The key of `room` at key epoch `epoch` (0: a room's first key).
  room_key derive_room_key(uint32_t key_id, std::string_view room, uint32_t epoch = 0) const {
    room_key key{};
    detail::check(chatseal_keyring_room_key_epoch(get(), key_id, room.data(), room.size(), epoch, key.data()));
    return key;
  }
  // The wrapped keyring file text (docs/format.md §8) under a 32-byte
  // key-encryption key, or under a passphrase (argon2id, 64 MiB, 3 passes).
  std::string wrap(const kek& key) const {
    return wrapped_text([&](char* out, size_t cap, size_t* len) {
      return chatseal_keyring_wrap(get(), key.data(), key.size(), out, cap, len);
    });
  }
  std::string wrap_passphrase(std::string_view passphrase) const {
    return wrapped_text([&](char* out, size_t cap, size_t* len) {
      return chatseal_keyring_wrap_passphrase(get(), detail::bytes(passphrase), passphrase.size(), out, cap, len);
    });
  }
  // Opens a wrapped keyring file text; chatseal::error with
  // CHATSEAL_WRONG_KEK for another KEK or passphrase.
  static keyring unwrap(std::string_view wrapped, const kek& key) {
    chatseal_keyring* k = nullptr;
    detail::check(chatseal_keyring_unwrap(wrapped.data(), wrapped.size(), key.data(), key.size(), &k));
    return keyring(k);
  }
  static keyring unwrap_passphrase(std::string_view wrapped, std::string_view passphrase) {
    chatseal_keyring* k = nullptr;
    detail::check(chatseal_keyring_unwrap_passphrase(wrapped.data(), wrapped.size(), detail::bytes(passphrase),
                                                     passphrase.size(), &k));
    return keyring(k);
  }
  const chatseal_keyring* get() const noexcept { return handle_.get(); }

 private:
  template <class F>
  static std::string wrapped_text(F&& call) {
    size_t need = 0;
    detail::check(call(nullptr, 0, &need));
    std::string out(need, '\0');
    detail::check(call(out.data(), out.size(), &need));
    out.resize(need - 1);  // drop the NUL
    return out;
  }
  explicit keyring(chatseal_keyring* k) : handle_(k) {}
  std::unique_ptr<chatseal_keyring, detail::keyring_deleter> handle_;
};

// Thread-safe: one sealer may serve every thread.
class sealer {
 public:
  explicit sealer(const keyring& k) {
    chatseal_sealer* s = nullptr;
    detail::check(chatseal_sealer_new(k.get(), &s));
    handle_.reset(s);
  }
  void set_keyring(const keyring& k) { detail::check(chatseal_sealer_set_keyring(handle_.get(), k.get())); }

  // Every call that takes a room takes it as a name, meaning the room's key
  // epoch 0, or as a name and an epoch (docs/format.md §1): an envelope
  // opens only at the epoch it was sealed at (CHATSEAL_BAD_TAG otherwise).
  std::vector<uint8_t> seal(std::string_view room, std::string_view context, std::string_view plaintext) const {
    return seal(room, 0, context, plaintext);
  }
  std::vector<uint8_t> seal(std::string_view room, uint32_t epoch, std::string_view context,
                            std::string_view plaintext) const {
    std::vector<uint8_t> out(chatseal_sealed_len(plaintext.size()));
    size_t len = 0;
    detail::check(chatseal_seal_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                      context.size(), detail::bytes(plaintext), plaintext.size(), out.data(),
                                      out.size(), &len));
    out.resize(len);
    return out;
  }
  std::string open(std::string_view room, std::string_view context, const std::vector<uint8_t>& envelope) const {
    return open(room, 0, context, envelope);
  }
  std::string open(std::string_view room, uint32_t epoch, std::string_view context,
                   const std::vector<uint8_t>& envelope) const {
    size_t need = 0;
    detail::check(chatseal_open_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                      context.size(), envelope.data(), envelope.size(), nullptr, 0, &need));
    std::string out(need, '\0');
    size_t len = 0;
    detail::check(chatseal_open_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                      context.size(), envelope.data(), envelope.size(),
                                      reinterpret_cast<uint8_t*>(out.data()), out.size(), &len));
    out.resize(len);
    return out;
  }
  std::string seal_text(std::string_view room, std::string_view context, std::string_view plaintext) const {
    return seal_text(room, 0, context, plaintext);
  }
  std::string seal_text(std::string_view room, uint32_t epoch, std::string_view context,
                        std::string_view plaintext) const {
    size_t need = 0;
    detail::check(chatseal_seal_text_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                           context.size(), detail::bytes(plaintext), plaintext.size(), nullptr, 0,
                                           &need));
    std::string out(need, '\0');
    detail::check(chatseal_seal_text_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                           context.size(), detail::bytes(plaintext), plaintext.size(), out.data(),
                                           out.size(), &need));
    out.resize(need - 1);  // drop the NUL
    return out;
  }
  std::string open_text(std::string_view room, std::string_view context, std::string_view text) const {
    return open_text(room, 0, context, text);
  }
  std::string open_text(std::string_view room, uint32_t epoch, std::string_view context, std::string_view text) const {
    size_t need = 0;
    detail::check(chatseal_open_text_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                           context.size(), text.data(), text.size(), nullptr, 0, &need));
    std::string out(need, '\0');
    size_t len = 0;
    detail::check(chatseal_open_text_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                           context.size(), text.data(), text.size(),
                                           reinterpret_cast<uint8_t*>(out.data()), out.size(), &len));
    out.resize(len);
    return out;
  }
  // Re-seals `envelope` under the current primary key (at the same room,
  // epoch and context) without the plaintext leaving the library.
  // std::nullopt: it is already under the primary (and authentic); keep it.
  // Throws with the codes of open().
  std::optional<std::vector<uint8_t>> rewrap(std::string_view room, std::string_view context,
                                             const std::vector<uint8_t>& envelope) const {
    return rewrap(room, 0, context, envelope);
  }
  std::optional<std::vector<uint8_t>> rewrap(std::string_view room, uint32_t epoch, std::string_view context,
                                             const std::vector<uint8_t>& envelope) const {
    std::vector<uint8_t> out(envelope.size());
    size_t len = 0;
    detail::check(chatseal_rewrap_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                        context.size(), envelope.data(), envelope.size(), out.data(), out.size(),
                                        &len));
    if (len == 0) return std::nullopt;
    out.resize(len);
    return out;
  }
  // rewrap() for the text form; throws with the codes of open_text().
  std::optional<std::string> rewrap_text(std::string_view room, std::string_view context,
                                         std::string_view text) const {
    return rewrap_text(room, 0, context, text);
  }
  std::optional<std::string> rewrap_text(std::string_view room, uint32_t epoch, std::string_view context,
                                         std::string_view text) const {
    size_t need = 0;
    detail::check(chatseal_rewrap_text_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                             context.size(), text.data(), text.size(), nullptr, 0, &need));
    std::string out(need, '\0');
    detail::check(chatseal_rewrap_text_epoch(handle_.get(), room.data(), room.size(), epoch, detail::bytes(context),
                                             context.size(), text.data(), text.size(), out.data(), out.size(),
                                             &need));
    if (need == 0) return std::nullopt;
    out.resize(need - 1);  // drop the NUL
    return out;
  }

 private:
  std::unique_ptr<chatseal_sealer, detail::sealer_deleter> handle_;
};

}  // namespace chatseal

#endif  // CHATSEAL_HPP
