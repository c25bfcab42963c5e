// Tweet normalisation before templating, each step switchable. The defaults reproduce what the
// TweetEval / cardiffnlp models were trained on (their published `preprocess`: a space-separated
// token starting with '@' (and longer than 1) becomes "@user", one starting with "http" becomes
// "http"), after HTML entities are decoded (the Twitter API escapes &, < and >).
#pragma once

#include <string>

#include "core/config.h"

namespace opine::data {

struct NormalizeOptions {
  bool html_entities = true;  // &amp; &lt; &#39; &#x1F600; ... to characters
  bool mentions = true;       // @name -> @user
  bool urls = true;           // http... -> http
  std::string hashtags = "keep";  // keep | segment (#BlackLivesMatter -> Black Lives Matter) | strip (drop '#')
  bool whitespace = true;     // runs of Unicode white space -> one space, trimmed
  bool lowercase = false;
  template <class V>
  void visit(V& v) {
    v("html_entities", html_entities, "decode HTML entities (&amp; -> &)");
    v("mentions", mentions, "replace @mentions by @user");
    v("urls", urls, "replace URLs by http");
    v("hashtags", hashtags, "keep hashtags, split them into words (camel case, digits, _), or drop the '#'",
      config::one_of({"keep", "segment", "strip"}));
    v("whitespace", whitespace, "collapse white space");
    v("lowercase", lowercase, "lowercase ASCII letters");
  }
};

std::string normalize(const std::string& text, const NormalizeOptions& options);

// The steps on their own.
std::string decode_html_entities(const std::string& text);
std::string replace_mentions_and_urls(const std::string& text, bool mentions, bool urls);
std::string segment_hashtags(const std::string& text, bool keep_words_only);
std::string collapse_whitespace(const std::string& text);

}  // namespace opine::data
