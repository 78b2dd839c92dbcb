#include "experiments/model/ArgSchema.h"

#include <cmath>
#include <sstream>

#include "chaosd/base/Units.h"

namespace chaosd {

std::string_view argTypeName(ArgType type) {
  switch (type) {
    case ArgType::kBool:
      return "bool";
    case ArgType::kInt:
      return "integer";
    case ArgType::kNumber:
      return "number";
    case ArgType::kString:
      return "string";
    case ArgType::kDuration:
      return "duration";
    case ArgType::kSize:
      return "size";
    case ArgType::kRate:
      return "rate";
    case ArgType::kPercent:
      return "percentage";
    case ArgType::kSignal:
      return "signal";
    case ArgType::kCidr:
      return "CIDR";
    case ArgType::kPortRange:
      return "port or port range";
    case ArgType::kHost:
      return "host name";
    case ArgType::kEnum:
      return "one of";
    case ArgType::kList:
      return "list";
    case ArgType::kObject:
      return "mapping";
    case ArgType::kStringMap:
      return "mapping of strings";
  }
  return "unknown";
}

const ArgSpec* ArgSchema::find(std::string_view name) const {
  for (const auto& a : args) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string formatArgValue(const ArgSpec& spec, double value) {
  switch (spec.type) {
    case ArgType::kDuration:
      return units::formatDuration(units::Duration(static_cast<int64_t>(value)));
    case ArgType::kSize:
      return units::formatSizeExact(static_cast<uint64_t>(value));  // a bound is exact
    case ArgType::kRate:
      return units::formatRate(static_cast<uint64_t>(value));
    case ArgType::kPercent:
      return units::formatPercent(value);
    default: {
      if (std::floor(value) == value && std::fabs(value) < 1e15) {
        return std::to_string(static_cast<int64_t>(value));
      }
      return std::to_string(value);
    }
  }
}

namespace {

std::string formatValue(const ArgSpec& spec, const nlohmann::json& v) {
  switch (spec.type) {
    case ArgType::kDuration:
    case ArgType::kSize:
    case ArgType::kRate:
    case ArgType::kPercent:
      return v.is_number() ? formatArgValue(spec, v.get<double>()) : v.dump();
    case ArgType::kSignal:
      return v.is_number_integer() ? units::signalName(v.get<int>()) : v.dump();
    case ArgType::kPortRange: {
      auto first = v.value("first", 0);
      auto last = v.value("last", 0);
      return first == last ? std::to_string(first)
                           : std::to_string(first) + "-" + std::to_string(last);
    }
    case ArgType::kList: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        out += (i ? ", " : "") + (spec.element ? formatValue(*spec.element, v[i]) : v[i].dump());
      }
      return out + "]";
    }
    case ArgType::kString:
    case ArgType::kEnum:
    case ArgType::kCidr:
    case ArgType::kHost:
      return v.is_string() ? v.get<std::string>() : v.dump();
    default:
      return v.dump();
  }
}

void formatInto(std::string& out, const std::string& prefix, const std::vector<ArgSpec>& specs,
                const nlohmann::json& args) {
  for (const auto& spec : specs) {
    if (!args.is_object() || !args.contains(spec.name)) continue;
    const auto& v = args[spec.name];
    if (spec.type == ArgType::kObject) {
      formatInto(out, prefix + spec.name + ".", spec.fields, v);
      continue;
    }
    out += (out.empty() ? "" : " ") + prefix + spec.name + "=" + formatValue(spec, v);
  }
}

}  // namespace

std::string formatArgs(const ArgSchema& schema, const nlohmann::json& args) {
  std::string out;
  formatInto(out, "", schema.args, args);
  return out;
}

namespace arg {

ArgSpec make(std::string name, ArgType type, std::string help) {
  ArgSpec s;
  s.name = std::move(name);
  s.type = type;
  s.help = std::move(help);
  return s;
}

ArgSpec required(ArgSpec spec) {
  spec.required = true;
  return spec;
}

ArgSpec withDefault(ArgSpec spec, nlohmann::json value) {
  spec.defaultValue = std::move(value);
  return spec;
}

ArgSpec range(ArgSpec spec, std::optional<double> min, std::optional<double> max) {
  spec.min = min;
  spec.max = max;
  return spec;
}

ArgSpec oneOf(std::string name, std::vector<std::string> choices, std::string help) {
  ArgSpec s = make(std::move(name), ArgType::kEnum, std::move(help));
  s.choices = std::move(choices);
  return s;
}

ArgSpec listOf(std::string name, ArgSpec element, std::string help) {
  ArgSpec s = make(std::move(name), ArgType::kList, std::move(help));
  s.element = std::make_shared<ArgSpec>(std::move(element));
  return s;
}

ArgSpec object(std::string name, std::vector<ArgSpec> fields, std::string help) {
  ArgSpec s = make(std::move(name), ArgType::kObject, std::move(help));
  s.fields = std::move(fields);
  return s;
}

}  // namespace arg

namespace {

std::string typeText(const ArgSpec& spec) {
  switch (spec.type) {
    case ArgType::kEnum: {
      std::string out = "one of ";
      for (size_t i = 0; i < spec.choices.size(); ++i) {
        if (i > 0) out += "|";
        out += spec.choices[i];
      }
      return out;
    }
    case ArgType::kList:
      return "list of " + (spec.element ? typeText(*spec.element) : std::string("values"));
    default:
      return std::string(argTypeName(spec.type));
  }
}

void describeInto(std::ostringstream& out, const ArgSpec& spec, int indent) {
  out << std::string(static_cast<size_t>(indent), ' ') << spec.name << " (" << typeText(spec);
  if (spec.required) out << ", required";
  if (spec.defaultValue) out << ", default " << formatValue(spec, *spec.defaultValue);
  if (spec.min || spec.max) {
    out << ", range " << (spec.min ? formatArgValue(spec, *spec.min) : "") << ".."
        << (spec.max ? formatArgValue(spec, *spec.max) : "");
  }
  out << "): " << spec.help << "\n";
  const auto& fields =
      spec.type == ArgType::kList && spec.element ? spec.element->fields : spec.fields;
  for (const auto& f : fields) describeInto(out, f, indent + 2);
}

}  // namespace

std::string describeSchema(const ArgSchema& schema) {
  std::ostringstream out;
  for (const auto& a : schema.args) describeInto(out, a, 2);
  return out.str();
}

}  // namespace chaosd
