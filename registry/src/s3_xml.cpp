#include "s3_xml.hpp"

#include <exception>

#include "aitw/registry/registry.hpp"

namespace aitw::registry::s3 {

namespace {

// The text of the first <tag>...</tag> at or after `from` and before `end`; npos when absent.
std::size_t find_element(std::string_view xml, std::string_view tag, std::size_t from, std::size_t end,
                         std::string_view& text) {
  // Appended, not "<" + std::string(tag): GCC 12 warns falsely (-Wrestrict) on that form at -O3.
  const std::string open = std::string("<").append(tag).append(">");
  const std::string close = std::string("</").append(tag).append(">");
  const auto a = xml.find(open, from);
  if (a == std::string_view::npos || a >= end) return std::string_view::npos;
  const auto b = xml.find(close, a + open.size());
  if (b == std::string_view::npos || b > end)
    throw RegistryError("S3 answer: unterminated <" + std::string(tag) + ">");
  text = xml.substr(a + open.size(), b - a - open.size());
  return b + close.size();
}

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) throw RegistryError("S3 answer: bad XML entity");
    const std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      unsigned long cp = 0;
      try {
        cp = ent[1] == 'x' ? std::stoul(std::string(ent.substr(2)), nullptr, 16)
                           : std::stoul(std::string(ent.substr(1)), nullptr, 10);
      } catch (const std::exception&) {
        throw RegistryError("S3 answer: bad XML character reference");
      }
      if (cp == 0 || cp > 0x10FFFF) throw RegistryError("S3 answer: bad XML character reference");
      // UTF-8 encode.
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      throw RegistryError("S3 answer: unknown XML entity &" + std::string(ent) + ";");
    }
    i = semi;
  }
  return out;
}

}  // namespace

ListPage parse_list_objects_v2(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos)
    throw RegistryError("S3 answer is not a ListBucketResult");
  ListPage page;
  std::string_view text;
  std::size_t pos = 0;
  while (true) {
    std::string_view contents;
    const auto next = find_element(xml, "Contents", pos, xml.size(), contents);
    if (next == std::string_view::npos) break;
    std::string_view key;
    if (find_element(contents, "Key", 0, contents.size(), key) == std::string_view::npos)
      throw RegistryError("S3 answer: <Contents> without <Key>");
    page.keys.push_back(xml_unescape(key));
    pos = next;
  }
  if (find_element(xml, "IsTruncated", 0, xml.size(), text) != std::string_view::npos)
    page.truncated = text == "true";
  if (find_element(xml, "NextContinuationToken", 0, xml.size(), text) != std::string_view::npos)
    page.next_token = xml_unescape(text);
  if (page.truncated && page.next_token.empty())
    throw RegistryError("S3 answer: truncated listing without NextContinuationToken");
  return page;
}

ErrorBody parse_error(std::string_view xml) {
  ErrorBody e;
  std::string_view text;
  try {
    if (find_element(xml, "Code", 0, xml.size(), text) != std::string_view::npos) e.code = xml_unescape(text);
    if (find_element(xml, "Message", 0, xml.size(), text) != std::string_view::npos)
      e.message = xml_unescape(text);
  } catch (const RegistryError&) {
    // A garbled error body: the HTTP status still tells the story.
  }
  return e;
}

}  // namespace aitw::registry::s3
