// The tutorial's C++ encryption microservice, redone with libchatseal:
// POST /encrypt {"message": "..."} -> {"encrypted": "<envelope>"} and
// POST /decrypt {"encrypted": "..."} -> {"message": "..."}, sealed under room ""
// with a real keyring instead of one hard-coded AES block.
//
// usage: microservice KEYRING.json [max_requests]
// Listens on 127.0.0.1 on a free port and prints "listening on 127.0.0.1:PORT".
// A toy: one connection at a time, flat JSON only. Use chatseal-server for real.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "chatseal.hpp"

// The value of a top-level string field, with \" \\ \/ \n unescaped; false if absent.
static bool json_string(const std::string& body, const std::string& field, std::string& out) {
  size_t p = body.find("\"" + field + "\"");
  if (p == std::string::npos) return false;
  p = body.find(':', p);
  if (p == std::string::npos) return false;
  p = body.find('"', p);
  if (p == std::string::npos) return false;
  out.clear();
  for (++p; p < body.size() && body[p] != '"'; ++p) {
    if (body[p] == '\\' && p + 1 < body.size()) {
      char c = body[++p];
      out.push_back(c == 'n' ? '\n' : c);
    } else {
      out.push_back(body[p]);
    }
  }
  return p < body.size();
}

static std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') { out += "\\n"; continue; }
    out.push_back(c);
  }
  return out;
}

static void reply(int fd, int status, const std::string& body) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Bad Request") +
                     "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  std::string all = head + body;
  ssize_t ignored = write(fd, all.data(), all.size());
  (void)ignored;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s KEYRING.json [max_requests]\n", argv[0]);
    return 2;
  }
  long max_requests = argc > 2 ? std::atol(argv[2]) : -1;
  try {
    chatseal::sealer sealer(chatseal::keyring::load_file(argv[1]));
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(srv, 64) != 0 ||
        getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("listen");
      return 1;
    }
    std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    std::fflush(stdout);
    for (long served = 0; max_requests < 0 || served < max_requests; ++served) {
      int fd = accept(srv, nullptr, nullptr);
      if (fd < 0) continue;
      std::string req;
      char buf[65536];
      size_t body_at = std::string::npos, want = 0;
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) {
        req.append(buf, static_cast<size_t>(n));
        if (body_at == std::string::npos && (body_at = req.find("\r\n\r\n")) != std::string::npos) {
          body_at += 4;
          size_t cl = req.find("Content-Length:");
          if (cl == std::string::npos) cl = req.find("content-length:");
          want = cl == std::string::npos ? 0 : std::strtoul(req.c_str() + cl + 15, nullptr, 10);
        }
        if (body_at != std::string::npos && req.size() >= body_at + want) break;
      }
      std::string body = body_at == std::string::npos ? "" : req.substr(body_at), value;
      try {
        if (req.rfind("POST /encrypt ", 0) == 0 && json_string(body, "message", value)) {
          reply(fd, 200, "{\"encrypted\":\"" + sealer.seal_text("", "", value) + "\"}");
        } else if (req.rfind("POST /decrypt ", 0) == 0 && json_string(body, "encrypted", value)) {
          reply(fd, 200, "{\"message\":\"" + json_escape(sealer.open_text("", "", value)) + "\"}");
        } else {
          reply(fd, 400, "{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"POST /encrypt or /decrypt with JSON\"}}");
        }
      } catch (const chatseal::error& e) {
        reply(fd, 400, std::string("{\"error\":{\"code\":\"BAD_REQUEST\",\"reason\":\"") +
                           chatseal_result_name(e.code()) + "\"}}");
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
