package xsd

import (
	"regexp"
	"strings"
	"testing"
)

func TestRegexTranslation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{`[A-Z]{3}`, []string{"EUR"}, []string{"EU", "EURO", "eur", " EUR"}},
		{`a|b`, []string{"a", "b"}, []string{"ab", ""}},
		{`^a$`, []string{"^a$"}, []string{"a"}}, // ^ and $ are ordinary in XSD
		{`.`, []string{"x", "é"}, []string{"\n", "\r", "xx"}},
		{`\d+`, []string{"123", "١٢٣"}, []string{"12a", ""}},
		{`\D`, []string{"a"}, []string{"1"}},
		{`\w+`, []string{"abc1", "a+b"}, []string{"a b", "a.b", "a-b", "a_b"}}, // _ is punctuation
		{`\W`, []string{" ", ".", "-"}, []string{"a", "+"}},
		{`\s\S`, []string{" a", "\ta"}, []string{"  ", "a "}},
		{`\i\c*`, []string{"_a.b-c", ":x", "é1"}, []string{"1a", "-a", ".a"}},
		{`\I\C`, []string{"1 ", "-!"}, []string{"a1", "1a"}},
		{`\p{Lu}\p{Ll}+`, []string{"Hello", "Élan"}, []string{"hello", "HELLO"}},
		{`\P{L}`, []string{"1", " "}, []string{"a"}},
		{`\p{IsBasicLatin}+`, []string{"abc~"}, []string{"é"}},
		{`[\p{IsGreek}]+`, []string{"αβγ"}, []string{"abc"}},
		{`[a-c\d]+`, []string{"a1c2"}, []string{"d"}},
		{`[^a-c]`, []string{"d", "1"}, []string{"a", "dd"}},
		{`[\-a]`, []string{"-", "a"}, []string{"b"}},
		{`[a-]`, []string{"-", "a"}, []string{"b"}},
		{`[-a]`, []string{"-", "a"}, []string{"b"}},
		{`[\S ]+`, []string{"a b", "x"}, []string{"a\tb"}},
		{`\.\?\*\+\(\)\{\}\[\]\|\\\^$`, []string{`.?*+(){}[]|\^$`}, []string{"x"}},
		{`a{2,3}`, []string{"aa", "aaa"}, []string{"a", "aaaa"}},
		{`a{2,}`, []string{"aa", "aaaaa"}, []string{"a"}},
		{`(ab)?c`, []string{"c", "abc"}, []string{"abbc"}},
		{`\n\r\t`, []string{"\n\r\t"}, []string{"nrt"}},
		{``, []string{""}, []string{"a"}},
	}
	for _, c := range cases {
		src, err := translateRegex(c.pattern)
		if err != nil {
			t.Errorf("%q: %v", c.pattern, err)
			continue
		}
		re, err := regexp.Compile(src)
		if err != nil {
			t.Errorf("%q → %q: %v", c.pattern, src, err)
			continue
		}
		for _, s := range c.match {
			if !re.MatchString(s) {
				t.Errorf("%q (%s) does not match %q", c.pattern, src, s)
			}
		}
		for _, s := range c.nomatch {
			if re.MatchString(s) {
				t.Errorf("%q (%s) matches %q", c.pattern, src, s)
			}
		}
	}
}

func TestRegexRefused(t *testing.T) {
	t.Parallel()
	cases := []struct{ pattern, want string }{
		{`[a-z-[aeiou]]`, "subtraction"},
		{`\p{IsTibetan}`, "block"},
		{`\p{Xx}`, "unknown character property"},
		{`a{1001}`, "more than 1000"},
		{`[^a\S]`, "negated"},
		{`(a`, "missing )"},
		{`a)`, "unexpected"},
		{`[a`, "unterminated"},
		{`*a`, "quantifier"},
		{`a{3,1}`, "bad quantifier"},
		{`\q`, "unknown escape"},
		{`[z-a]`, "bad range"},
		{`\`, "trailing backslash"},
		{`[]`, "unterminated"},
		{`\p{Cn}`, "unassigned"},
	}
	for _, c := range cases {
		_, err := translateRegex(c.pattern)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one mentioning %q", c.pattern, err, c.want)
		}
	}
}

func TestPatternsCombine(t *testing.T) {
	t.Parallel()
	// Patterns of one step are OR'ed; the steps of a derivation AND'ed.
	s := mustCompile(t, `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:simpleType name="base"><xs:restriction base="xs:string"><xs:pattern value="[a-z]+"/><xs:pattern value="[0-9]+"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="derived"><xs:restriction base="base"><xs:pattern value=".{3}"/></xs:restriction></xs:simpleType>
  <xs:element name="v" type="derived"/>
</xs:schema>`)
	for v, ok := range map[string]bool{"abc": true, "123": true, "ab": false, "a1c": false, "abcd": false} {
		vs := s.Validate(mustParse(t, "<v>"+v+"</v>"))
		if (len(vs) == 0) != ok {
			t.Errorf("%q: valid = %v, want %v: %v", v, len(vs) == 0, ok, vs)
		}
	}
}
