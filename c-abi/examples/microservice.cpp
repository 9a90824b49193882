// The tutorial's C++ encryption microservice, redone with libchatseal, with
// the API of chatseal-server's service endpoints (docs/protocol.md §4):
//   POST /encrypt {"message", "room"?, "epoch"?, "context"?} -> {"encrypted": "<envelope>"}
//   POST /decrypt {"encrypted", "room"?, "epoch"?, "context"?} -> {"message"}
// Room "" unless `room` is given, at key epoch `epoch` (an integer from 0 to
// 4294967295) or 0; the `context` string's UTF-8 is the context. So js/server.js pointed at it (CHATSEAL_ENCRYPTION_URL) stores
// chat messages that open with the room keys it hands out: the chat context
// (room NUL id NUL sender) arrives as a JSON string with \u0000 escapes.
//
// usage: CHATSEAL_SERVICE_TOKEN=... microservice KEYRING.json [max_requests]
// Every request needs `Authorization: Bearer <CHATSEAL_SERVICE_TOKEN>`: the
// endpoints are a decryption oracle, and the listen address proves nothing
// (a reverse proxy on the same host is a loopback client too).
// Listens on 127.0.0.1 on a free port and prints "listening on 127.0.0.1:PORT".
// A toy: one connection at a time (5 s to send a request), flat JSON objects
// of strings and numbers only, bodies up to 256 KiB. Use chatseal-server for
// real.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "chatseal.hpp"

namespace {

constexpr size_t kMaxRequest = 256 * 1024;

struct http_error {
  int status;
  std::string code, message, reason;
};

// Appends code point `cp` as UTF-8.
void put_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A value of a flat JSON object: a string (decoded) or a number (its text,
// as the JSON grammar allows it).
struct json_value {
  bool is_string;
  std::string text;
};
using json_object = std::map<std::string, json_value>;

// A minimal JSON reader for one flat object whose values are all strings or
// numbers: every escape (\uXXXX with surrogate pairs included) is decoded,
// anything else is an error. Later duplicates of a key replace earlier ones.
class flat_json {
 public:
  explicit flat_json(const std::string& s) : s_(s) {}

  json_object object() {
    json_object out;
    ws();
    expect('{');
    ws();
    if (peek() == '}') return ++p_, end(out);
    for (;;) {
      std::string key = string();
      ws();
      expect(':');
      ws();
      out[key] = peek() == '"' ? json_value{true, string()} : json_value{false, number()};
      ws();
      if (peek() == ',') { ++p_; ws(); continue; }
      expect('}');
      return end(out);
    }
  }

 private:
  [[noreturn]] static void fail(const std::string& why) {
    throw http_error{400, "BAD_REQUEST", "the body must be a JSON object of strings and numbers: " + why, ""};
  }
  char peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }
  void ws() { while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }
  json_object& end(json_object& out) {
    ws();
    if (p_ != s_.size()) fail("trailing data");
    return out;
  }
  unsigned long hex4() {
    if (p_ + 4 > s_.size()) fail("short \\u escape");
    unsigned long v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[p_++];
      if (!std::isxdigit(static_cast<unsigned char>(c))) fail("bad \\u escape");
      v = v * 16 + static_cast<unsigned long>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
  }
  bool digit() const { return std::isdigit(static_cast<unsigned char>(peek())) != 0; }
  void digits() {
    if (!digit()) fail("bad number");
    while (digit()) ++p_;
  }
  // A number as RFC 8259 §6 writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  std::string number() {
    size_t start = p_;
    if (peek() == '-') ++p_;
    if (peek() == '0') {
      ++p_;
    } else {
      digits();
    }
    if (peek() == '.') ++p_, digits();
    if (peek() == 'e' || peek() == 'E') {
      ++p_;
      if (peek() == '+' || peek() == '-') ++p_;
      digits();
    }
    return s_.substr(start, p_ - start);
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (p_ >= s_.size()) fail("unterminated string");
      char c = s_[p_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') { out.push_back(c); continue; }
      if (p_ >= s_.size()) fail("unterminated escape");
      switch (char e = s_[p_++]) {
        case '"': case '\\': case '/': out.push_back(e); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          unsigned long cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (p_ + 2 > s_.size() || s_[p_] != '\\' || s_[p_ + 1] != 'u') fail("lone surrogate");
            p_ += 2;
            unsigned long lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("lone surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("lone surrogate");
          }
          put_utf8(out, cp);
          break;
        }
        default: fail("unknown escape");
      }
    }
  }
  const std::string& s_;
  size_t p_ = 0;
};

// Lead bytes and continuation bytes only (enough to keep the JSON valid).
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t more = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 4;
    if (more == 4 || (more > 0 && i + more >= s.size())) return false;
    for (size_t k = 1; k <= more; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += more + 1;
  }
  return true;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const char* status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 413: return "Payload Too Large";
    default: return "Bad Request";
  }
}

void reply(int fd, int status, const std::string& body) {
  std::string all = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t done = 0; done < all.size();) {
    ssize_t n = send(fd, all.data() + done, all.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void reply_error(int fd, const http_error& e) {
  std::string body = "{\"error\":{\"code\":\"" + e.code + "\",\"message\":\"" + json_escape(e.message) + "\"";
  if (!e.reason.empty()) body += ",\"reason\":\"" + e.reason + "\"";
  reply(fd, e.status, body + "}}");
}

struct request {
  std::string line, body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

// Reads one request: the head, then Content-Length bytes of body.
request read_request(int fd) {
  std::string raw;
  char buf[16384];
  size_t head_end = std::string::npos;
  while ((head_end = raw.find("\r\n\r\n")) == std::string::npos) {
    if (raw.size() > 16384) throw http_error{413, "TOO_LARGE", "request head too large", ""};
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) throw http_error{400, "BAD_REQUEST", "incomplete request", ""};
    raw.append(buf, static_cast<size_t>(n));
  }
  request req;
  size_t eol = raw.find("\r\n");
  req.line = raw.substr(0, eol);
  for (size_t at = eol + 2; at < head_end;) {
    size_t next = raw.find("\r\n", at);
    std::string h = raw.substr(at, next - at);
    size_t colon = h.find(':');
    if (colon != std::string::npos) {
      std::string name = h.substr(0, colon), value = h.substr(colon + 1);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t") + 1);
      req.headers[name] = value;
    }
    at = next + 2;
  }
  if (req.headers.count("transfer-encoding"))
    throw http_error{400, "BAD_REQUEST", "send a Content-Length body, not chunked", ""};
  const std::string& cl = req.headers["content-length"];
  char* end = nullptr;
  unsigned long long want = cl.empty() ? 0 : std::strtoull(cl.c_str(), &end, 10);
  if (!cl.empty() && (*end != '\0' || !std::isdigit(static_cast<unsigned char>(cl[0]))))
    throw http_error{400, "BAD_REQUEST", "bad Content-Length", ""};
  if (want > kMaxRequest) throw http_error{413, "TOO_LARGE", "body larger than 256 KiB", ""};
  req.body = raw.substr(head_end + 4);
  while (req.body.size() < want) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) throw http_error{400, "BAD_REQUEST", "incomplete body", ""};
    req.body.append(buf, static_cast<size_t>(n));
  }
  req.body.resize(static_cast<size_t>(want));
  return req;
}

// Compares without an early exit, so timing does not reveal a prefix (the
// length is not secret).
bool same_secret(const std::string& given, const std::string& expected) {
  if (expected.empty() || given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

std::string field(const json_object& obj, const char* name, bool required) {
  auto it = obj.find(name);
  if (it != obj.end()) {
    if (!it->second.is_string) throw http_error{400, "BAD_REQUEST", std::string("\"") + name + "\" must be a string", ""};
    return it->second.text;
  }
  if (required) throw http_error{400, "BAD_REQUEST", std::string("missing field \"") + name + "\"", ""};
  return "";
}

// The optional `epoch`: a JSON integer from 0 to 4294967295, written without
// a fraction or exponent (as the Rust server's u32 takes it); 0 if absent.
uint32_t epoch_field(const json_object& obj) {
  auto it = obj.find("epoch");
  if (it == obj.end()) return 0;
  const std::string& t = it->second.text;
  bool digits_only = !it->second.is_string && !t.empty() && t.size() <= 10 &&
                     t.find_first_not_of("0123456789") == std::string::npos;
  unsigned long long value = digits_only ? std::strtoull(t.c_str(), nullptr, 10) : 0;
  if (!digits_only || value > 4294967295ULL)
    throw http_error{400, "BAD_REQUEST", "\"epoch\" must be an integer from 0 to 4294967295", ""};
  return static_cast<uint32_t>(value);
}

std::string handle(const chatseal::sealer& sealer, const std::string& token, const request& req) {
  bool enc = req.line.rfind("POST /encrypt ", 0) == 0, dec = req.line.rfind("POST /decrypt ", 0) == 0;
  if (!enc && !dec) throw http_error{404, "NOT_FOUND", "POST /encrypt or /decrypt", ""};
  auto auth = req.headers.find("authorization");
  std::string given = auth == req.headers.end() || auth->second.rfind("Bearer ", 0) != 0 ? "" : auth->second.substr(7);
  if (!same_secret(given, token)) throw http_error{401, "UNAUTHORIZED", "missing or wrong service token", ""};
  auto obj = flat_json(req.body).object();
  std::string room = field(obj, "room", false), context = field(obj, "context", false);
  uint32_t epoch = epoch_field(obj);
  try {
    if (enc) return "{\"encrypted\":\"" + sealer.seal_text(room, epoch, context, field(obj, "message", true)) + "\"}";
    std::string message = sealer.open_text(room, epoch, context, field(obj, "encrypted", true));
    if (!valid_utf8(message)) throw http_error{400, "BAD_REQUEST", "the plaintext is not UTF-8 text", ""};
    return "{\"message\":\"" + json_escape(message) + "\"}";
  } catch (const chatseal::error& e) {
    throw http_error{400, "BAD_REQUEST", chatseal_result_message(e.code()), chatseal_result_name(e.code())};
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* token_env = std::getenv("CHATSEAL_SERVICE_TOKEN");
  if (argc < 2 || !token_env || !*token_env) {
    std::fprintf(stderr, "usage: CHATSEAL_SERVICE_TOKEN=<secret> %s KEYRING.json [max_requests]\n", argv[0]);
    return 2;
  }
  const std::string token = token_env;
  long max_requests = argc > 2 ? std::atol(argv[2]) : -1;
  try {
    chatseal::sealer sealer(chatseal::keyring::load_file(argv[1]));
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(srv, 128) != 0 ||
        getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("listen");
      return 1;
    }
    std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    std::fflush(stdout);
    for (long served = 0; max_requests < 0 || served < max_requests; ++served) {
      int fd = accept(srv, nullptr, nullptr);
      if (fd < 0) continue;
      timeval timeout{5, 0};  // one slow client must not stall the rest for long
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
      try {
        reply(fd, 200, handle(sealer, token, read_request(fd)));
      } catch (const http_error& e) {
        reply_error(fd, e);
      }
      close(fd);
    }
    close(srv);
  } catch (const chatseal::error& e) {
    std::fprintf(stderr, "chatseal: %s\n", e.what());
    return 1;
  }
  return 0;
}
