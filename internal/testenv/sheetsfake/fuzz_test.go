package sheetsfake

import "testing"

// FuzzParseA1 checks that parseA1 never panics and that every range it
// accepts formats to text that parses back to the same range.
func FuzzParseA1(f *testing.F) {
	for _, s := range []string{
		"Sheet1!A1:C10", "'Form Responses 1'!A:Z", "'It''s'!B2", "A:C", "2:5",
		"A2:Z", "B2:5", "Sheet1", "A1", "C3:A1", "$A$1:$B$2", "tab01", "'tab01'",
		"Form Responses 1!A1", "'a!b'!ZZZ10000000", "", "'", "''", "!", ":", "A0",
		"Sheet1!", "'x'!", "AAAA1", "A1:B2:C3", "'unterminated", "\xff!A1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseA1(s)
		if err != nil {
			return
		}
		formatted := r.String()
		r2, err := parseA1(formatted)
		if err != nil {
			t.Fatalf("parseA1(%q) = %+v, formats as %q which does not parse: %v", s, r, formatted, err)
		}
		if r2 != r {
			t.Fatalf("parseA1(%q) = %+v, formats as %q which parses to %+v", s, r, formatted, r2)
		}
		if again := r2.String(); again != formatted {
			t.Fatalf("String not stable: %q then %q", formatted, again)
		}
	})
}
