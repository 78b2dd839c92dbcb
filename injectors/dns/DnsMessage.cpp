#include "injectors/dns/DnsMessage.h"

#include <cstdlib>
#include <memory>

extern "C" {
#include <ldns/ldns.h>
}

namespace chaosd::dns {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

// The EDNS payload size the DNS flag day 2020 settled on.
constexpr uint16_t kEdnsPayload = 1232;

Pkt parse(const uint8_t* data, size_t len) {
  ldns_pkt* p = nullptr;
  if (data == nullptr || ldns_wire2pkt(&p, data, len) != LDNS_STATUS_OK) return nullptr;
  return Pkt(p);
}

// The first question of a standard query, or nullptr.
ldns_rr* firstQuestion(ldns_pkt* p) {
  if (ldns_pkt_qr(p) || ldns_pkt_get_opcode(p) != LDNS_PACKET_QUERY) return nullptr;
  ldns_rr_list* q = ldns_pkt_question(p);
  if (q == nullptr || ldns_rr_list_rr_count(q) == 0) return nullptr;
  return ldns_rr_list_rr(q, 0);
}

}  // namespace

std::optional<Query> parseQuery(const uint8_t* data, size_t len) {
  Pkt p = parse(data, len);
  if (!p) return std::nullopt;
  ldns_rr* q = firstQuestion(p.get());
  if (q == nullptr || ldns_rr_owner(q) == nullptr) return std::nullopt;
  char* owner = ldns_rdf2str(ldns_rr_owner(q));
  if (owner == nullptr) return std::nullopt;
  std::string name(owner);
  std::free(owner);
  if (!name.empty() && name.back() == '.') name.pop_back();
  return Query{ldns_pkt_id(p.get()), std::move(name), static_cast<uint16_t>(ldns_rr_get_type(q))};
}

Result<std::vector<uint8_t>> errorAnswer(const uint8_t* data, size_t len, Rcode rcode) {
  Pkt query = parse(data, len);
  ldns_rr* question = query ? firstQuestion(query.get()) : nullptr;
  if (question == nullptr) return Error(ErrorCode::kInvalid, "not a DNS query");
  Pkt answer(ldns_pkt_new());
  if (!answer) return Error(ErrorCode::kInternal, "ldns_pkt_new failed");
  ldns_pkt* a = answer.get();
  ldns_pkt_set_id(a, ldns_pkt_id(query.get()));
  ldns_pkt_set_qr(a, true);
  ldns_pkt_set_opcode(a, ldns_pkt_get_opcode(query.get()));
  ldns_pkt_set_rd(a, ldns_pkt_rd(query.get()));
  ldns_pkt_set_cd(a, ldns_pkt_cd(query.get()));
  ldns_pkt_set_ra(a, true);
  ldns_pkt_set_rcode(a, static_cast<uint8_t>(rcode));
  ldns_pkt_push_rr(a, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
  if (ldns_pkt_edns(query.get())) ldns_pkt_set_edns_udp_size(a, kEdnsPayload);
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, a, &size) != LDNS_STATUS_OK || wire == nullptr) {
    return Error(ErrorCode::kInternal, "ldns could not write the answer");
  }
  std::vector<uint8_t> out(wire, wire + size);
  std::free(wire);
  return out;
}

}  // namespace chaosd::dns
