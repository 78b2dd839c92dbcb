#pragma once

#include <string>
#include <string_view>

// Escaping of report strings (experiment names, probe details, errors: user or remote
// controlled) for each output format.
namespace chaosd::report {

// For XML 1.0 text and attribute values (JUnit, and the HTML, which is also well-formed XML):
// & < > " ' become entities; tab, newline and carriage return become character references
// (so attribute values keep them); every other control character, which XML 1.0 forbids even
// as a reference, and U+FFFE/U+FFFF become U+FFFD, the replacement character.
std::string xmlEscape(std::string_view s);

// The same for element content, where tab and newline need no escaping and stay as they are.
std::string xmlText(std::string_view s);

// For a Markdown table cell or list item: newlines become spaces, control characters U+FFFD,
// and the characters Markdown or HTML would interpret (\ ` * _ [ ] < > | #) are escaped.
std::string markdownEscape(std::string_view s);

}  // namespace chaosd::report
