#include "injectors/network/QdiscInjector.h"

#include <utility>

#include "experiments/model/Experiment.h"
#include "injectors/network/IfbIngress.h"
#include "injectors/network/QdiscRoot.h"
#include "injectors/network/QdiscTree.h"

namespace chaosd {
namespace {

using json = nlohmann::json;
using qdisc::applyIngress;
using qdisc::applyTree;
using qdisc::auditIngress;
using qdisc::auditTree;
using qdisc::checkIngressIsOurs;
using qdisc::className;
using qdisc::deviceKey;
using qdisc::revertIngress;
using qdisc::revertTree;
using qdisc::snapshotRoot;

// How much of the record a step needs: apply all of it, revert and audit no leaf.
enum class UndoUse { kApply, kRevert };

// The record, parsed, if it is one of ours and (unless faultId is empty) the fault's.
Result<QdiscUndo> undoFor(const json& record, const std::string& faultId, UndoUse use) {
  auto undo =
      use == UndoUse::kApply ? QdiscUndo::fromJson(record) : QdiscUndo::fromJsonForRevert(record);
  if (!undo) return std::move(undo).error();
  if (!faultId.empty() && undo->faultId != faultId) {
    return Error(ErrorCode::kInvalid, "the undo record belongs to another fault");
  }
  return undo;
}

// ---- prepare, step by step ----------------------------------------------------------------

// The record before the device is read: what the request and its args decide.
Result<QdiscUndo> undoFromRequest(const FaultRequest& request, const NetnsRef& ns, TcKernel& tc) {
  auto args = QdiscArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  auto leaf = leafForFault(request.faultType, *args, [&tc] { return tc.hasNetem(); });
  if (!leaf) return std::move(leaf).error();
  auto filters = u32FiltersFor(args->match);
  if (!filters) return std::move(filters).error();
  QdiscUndo undo;
  undo.faultId = request.faultId;
  undo.faultType = request.faultType;
  undo.netns = ns.nsPath();
  undo.iface = request.target->interface.name;
  undo.direction = args->direction;
  undo.slot = qdiscSlot(request.faultId);
  undo.leaf = std::move(*leaf);
  undo.filters = std::move(*filters);
  return undo;
}

// The root the fault's revert must restore: the one there, or, under our tree, the kernel's
// default (the tree's default class says so) or the user's root this context snapshotted.
Result<QdiscPriorRoot> priorRoot(QdiscContext& context, TcNetns& tc, int ifindex,
                                 const std::string& iface) {
  auto root = snapshotRoot(tc, ifindex, iface);
  if (!root) return std::move(root).error();
  auto key = deviceKey(tc, ifindex);
  if (!key) return std::move(key).error();
  if (root->ours && root->oursOverDefault) {
    // Our tree over the kernel's default root (another fault's, maybe another process's):
    // this fault joins it, and whichever revert is last deletes it.
    return QdiscPriorRoot{};
  }
  if (root->ours) {
    auto prior = context.priorOf(*key);
    if (!prior) {
      return Error(ErrorCode::kConflict,
                   iface +
                       " carries a chaosd qdisc tree (c4a0:) over a root qdisc of the user's "
                       "that another process replaced (another chaosd run, or one left over: "
                       "see `chaosctl recover`); only that process can restore it");
    }
    return *prior;
  }
  context.remember(*key, root->prior);
  return root->prior;
}

// Reads the device in its namespace: the interface, then its ingress qdisc (ingress: the ifb is
// new, so the prior root is the default) or its root.
Result<void> readDevice(QdiscContext& context, TcKernel& kernel, QdiscUndo& undo,
                        const NetnsRef& ns) {
  auto tc = kernel.enter(undo.netns);
  if (!tc) return std::move(tc).error();
  auto ifindex = (*tc)->ifindex(undo.iface);
  if (!ifindex) {
    return Error(ErrorCode::kNotFound, "no interface " + undo.iface + " in " + ns.describe());
  }
  auto lock = context.lockTree();
  if (undo.ingress()) {
    CHAOSD_TRY(checkIngressIsOurs(**tc, *ifindex, undo.iface));
    undo.ifb = qdiscIfbName(undo.faultId);
    undo.prior = QdiscPriorRoot{};
    return success();
  }
  auto prior = priorRoot(context, **tc, *ifindex, undo.iface);
  if (!prior) return std::move(prior).error();
  undo.prior = std::move(*prior);
  return success();
}

PreparedFault preparedFault(const QdiscUndo& undo, const NetnsRef& ns) {
  PreparedFault out;
  out.undo = undo.toJson();
  const auto* tbf = std::get_if<TbfLeaf>(&undo.leaf.shape);
  const std::string what = tbf != nullptr ? "tbf " + std::to_string(tbf->rate * 8) + " bit/s"
                                          : "netem " + undo.leaf.toJson().dump();
  out.description = undo.faultType + " (" + what + ") on " + undo.iface + " in " + ns.describe() +
                    ", " + std::string(qdiscDirectionName(undo.direction)) + ", class " +
                    className(undo.slot) + (undo.ingress() ? " on ifb " + undo.ifb : "");
  out.resources = {"qdisc:" + undo.netns + ":" + undo.iface + ":" + std::to_string(undo.slot)};
  return out;
}

}  // namespace

QdiscInjector::QdiscInjector() : QdiscInjector(std::make_shared<QdiscContext>()) {}

QdiscInjector::QdiscInjector(std::shared_ptr<QdiscContext> context)
    : QdiscInjector(std::move(context), netlinkTcKernel()) {}

QdiscInjector::QdiscInjector(std::shared_ptr<QdiscContext> context, std::shared_ptr<TcKernel> tc)
    : context_(std::move(context)), tc_(std::move(tc)) {}

Result<PreparedFault> QdiscInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr || target->kind != TargetKind::kInterface) {
    return Error(ErrorCode::kInvalid, request.faultType + " needs an interface target");
  }
  const NetnsRef& ns = target->interface.netns;
  auto undo = undoFromRequest(request, ns, *tc_);
  if (!undo) return std::move(undo).error();
  CHAOSD_TRY(readDevice(*context_, *tc_, *undo, ns));
  return preparedFault(*undo, ns);
}

Result<AppliedFault> QdiscInjector::apply(const std::string& faultId, const json& undo) {
  auto record = undoFor(undo, faultId, UndoUse::kApply);
  if (!record) return std::move(record).error();
  const bool isNetem = record->leaf.isNetem();
  if (isNetem) {
    auto has = tc_->hasNetem();
    if (has && !*has) return Error(ErrorCode::kUnsupported, missingNetem());
  }
  auto tc = tc_->enter(record->netns);
  if (!tc) return std::move(tc).error();
  auto ifindex = (*tc)->ifindex(record->iface);
  if (!ifindex) return std::move(ifindex).error();
  auto lock = context_->lockTree();
  AppliedFault out;
  out.backend = isNetem ? "netem" : "tbf";
  out.observed = {{"iface", record->iface},
                  {"class", className(record->slot)},
                  {"filters", record->filters.size()}};
  if (record->ingress()) {
    CHAOSD_TRY(applyIngress(**tc, *ifindex, *record));
    out.observed["ifb"] = record->ifb;
  } else {
    CHAOSD_TRY(applyTree(**tc, *ifindex, *record, record->iface));
  }
  return out;
}

// Lenient about the record's leaf: taking the tree down needs only the device, the slot, the
// filters and the prior root.
Result<json> QdiscInjector::revert(const std::string& faultId, const json& undo) {
  auto record = undoFor(undo, faultId, UndoUse::kRevert);
  if (!record) return std::move(record).error();
  auto tc = tc_->enter(record->netns);
  if (!tc) {
    if (tc.error().code() == ErrorCode::kNotFound) {
      return json{{"note", "the network namespace is gone"}};
    }
    return std::move(tc).error();
  }
  auto lock = context_->lockTree();
  auto ifindex = (*tc)->ifindex(record->iface);
  if (record->ingress()) return revertIngress(**tc, ifindex, *record);
  if (!ifindex) {
    if (ifindex.error().code() == ErrorCode::kNotFound) {
      return json{{"note", "interface " + record->iface + " is gone"}};
    }
    return std::move(ifindex).error();
  }
  return revertTree(*context_, **tc, *ifindex, *record, record->iface);
}

Result<std::vector<std::string>> QdiscInjector::audit(const json& undo) {
  auto record = undoFor(undo, "", UndoUse::kRevert);
  if (!record) return std::move(record).error();
  std::vector<std::string> out;
  auto tc = tc_->enter(record->netns);
  if (!tc) return out;
  auto ifindex = (*tc)->ifindex(record->iface);
  if (record->ingress()) {
    CHAOSD_TRY(auditIngress(**tc, ifindex, *record, out));
  } else if (ifindex) {
    CHAOSD_TRY(auditTree(**tc, *ifindex, *record, record->iface, out));
  }
  return out;
}

}  // namespace chaosd
